// Every libxenvchan and libxenstore call vchan-xen makes, as one table whose
// types are the headers' own (shim.h), so a changed signature is a compile
// error. Two ways to fill it: the plugin dlopens the libraries at its first
// open() (Sources/XenVchanLoader.swift: loading the plugin maps nothing of
// Xen, and a host without the libraries still loads it); a static program
// (the agent) links them (Linked/XenVchanLinked.swift).
import CXenvchan

public final class XenVchanAPI: @unchecked Sendable {
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

    public init(server_init: ody_libxenvchan_server_init_fn, client_init: ody_libxenvchan_client_init_fn,
                close: ody_libxenvchan_close_fn, read: ody_libxenvchan_read_fn, write: ody_libxenvchan_write_fn,
                wait: ody_libxenvchan_wait_fn, fd_for_select: ody_libxenvchan_fd_for_select_fn,
                is_open: ody_libxenvchan_is_open_fn, data_ready: ody_libxenvchan_data_ready_fn,
                buffer_space: ody_libxenvchan_buffer_space_fn, xs_open: ody_xs_open_fn, xs_close: ody_xs_close_fn,
                xs_read: ody_xs_read_fn, xs_rm: ody_xs_rm_fn, xs_directory: ody_xs_directory_fn) {
        self.server_init = server_init; self.client_init = client_init; self.close = close
        self.read = read; self.write = write; self.wait = wait; self.fd_for_select = fd_for_select
        self.is_open = is_open; self.data_ready = data_ready; self.buffer_space = buffer_space
        self.xs_open = xs_open; self.xs_close = xs_close; self.xs_read = xs_read; self.xs_rm = xs_rm
        self.xs_directory = xs_directory
    }
}
