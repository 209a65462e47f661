// libxenvchan and libxenstore, opened at the first open() of an instance
// rather than linked (as vmm-xen does with libxl): loading the plugin maps
// no Xen library, and a host without them still loads the plugin; open()
// then fails with "libxenvchan is not installed". Every call goes through
// this table; its types are the headers' own (shim.h).
import CXenvchan
import PluginKit

final class XenVchanAPI: @unchecked Sendable {
    let server_init: ody_libxenvchan_server_init_fn
    let client_init: ody_libxenvchan_client_init_fn
    let close: ody_libxenvchan_close_fn
    let read: ody_libxenvchan_read_fn
    let write: ody_libxenvchan_write_fn
    let wait: ody_libxenvchan_wait_fn
    let fd_for_select: ody_libxenvchan_fd_for_select_fn
    let is_open: ody_libxenvchan_is_open_fn
    let data_ready: ody_libxenvchan_data_ready_fn
    let buffer_space: ody_libxenvchan_buffer_space_fn
    let xs_open: ody_xs_open_fn
    let xs_close: ody_xs_close_fn
    let xs_read: ody_xs_read_fn
    let xs_rm: ody_xs_rm_fn
    let xs_directory: ody_xs_directory_fn

    /// Resolves every call; the first missing symbol is the error.
    init(vchan: SharedLibrary, store: SharedLibrary) throws(LibraryError) {
        server_init = try vchan.function("libxenvchan_server_init")
        client_init = try vchan.function("libxenvchan_client_init")
        close = try vchan.function("libxenvchan_close")
        read = try vchan.function("libxenvchan_read")
        write = try vchan.function("libxenvchan_write")
        wait = try vchan.function("libxenvchan_wait")
        fd_for_select = try vchan.function("libxenvchan_fd_for_select")
        is_open = try vchan.function("libxenvchan_is_open")
        data_ready = try vchan.function("libxenvchan_data_ready")
        buffer_space = try vchan.function("libxenvchan_buffer_space")
        xs_open = try store.function("xs_open")
        xs_close = try store.function("xs_close")
        xs_read = try store.function("xs_read")
        xs_rm = try store.function("xs_rm")
        xs_directory = try store.function("xs_directory")
    }

    /// The process-wide table, opened and resolved on the first call only.
    static let shared = LoadOnce<XenVchanAPI> { () throws(LibraryError) in
        let vchan = try SharedLibrary.open(ODY_LIBXENVCHAN_SONAME, package: "libxenvchan")
        let store = try SharedLibrary.open(ODY_LIBXENSTORE_SONAME, package: "libxenstore")
        return try XenVchanAPI(vchan: vchan, store: store)
    }
}
