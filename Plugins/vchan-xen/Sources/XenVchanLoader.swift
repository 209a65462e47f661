// The plugin's XenVchanAPI: libxenvchan and libxenstore dlopened at the
// first open() of an instance (as vmm-xen does with libxl), resolved once
// per process; a missing library or symbol is the error open() reports.
import CXenvchan
import PluginKit
import XenVchanCore

enum XenVchanLoader {
    static let shared = LoadOnce<XenVchanAPI> { () throws(LibraryError) in
        let v = try SharedLibrary.open(ODY_LIBXENVCHAN_SONAME, package: "libxenvchan")
        let s = try SharedLibrary.open(ODY_LIBXENSTORE_SONAME, package: "libxenstore")
        let e = try SharedLibrary.open(ODY_LIBXENEVTCHN_SONAME, package: "libxenevtchn")
        return XenVchanAPI(
            server_init: try v.function("libxenvchan_server_init"), client_init: try v.function("libxenvchan_client_init"),
            close: try v.function("libxenvchan_close"), read: try v.function("libxenvchan_read"),
            write: try v.function("libxenvchan_write"), wait: try v.function("libxenvchan_wait"),
            fd_for_select: try v.function("libxenvchan_fd_for_select"), is_open: try v.function("libxenvchan_is_open"),
            data_ready: try v.function("libxenvchan_data_ready"), buffer_space: try v.function("libxenvchan_buffer_space"),
            xs_open: try s.function("xs_open"), xs_close: try s.function("xs_close"), xs_read: try s.function("xs_read"),
            xs_rm: try s.function("xs_rm"), xs_directory: try s.function("xs_directory"),
            xs_watch: try s.function("xs_watch"), xs_unwatch: try s.function("xs_unwatch"), xs_fileno: try s.function("xs_fileno"),
            xs_check_watch: try s.function("xs_check_watch"),
            evtchn_bind_unbound_port: try e.function("xenevtchn_bind_unbound_port"),
            evtchn_bind_interdomain: try e.function("xenevtchn_bind_interdomain"), evtchn_notify: try e.function("xenevtchn_notify"))
    }
}
