// XenVchanAPI for a static program: libxenvchan and its closure
// (libxengnttab, libxenevtchn, libxenstore, libxentoolcore, libxentoollog:
// libxen-dev's .a files) linked in, for the agent in a Xen domU, which is a
// static executable and cannot dlopen. Only targets that mean to link Xen's
// libraries depend on this one; the plugin never does (it dlopens them).
import CXenvchan
import XenVchanCore

public extension XenVchanAPI {
    static let linked = XenVchanAPI(
        server_init: libxenvchan_server_init, client_init: libxenvchan_client_init, close: libxenvchan_close,
        read: libxenvchan_read, write: libxenvchan_write, wait: libxenvchan_wait, fd_for_select: libxenvchan_fd_for_select,
        is_open: libxenvchan_is_open, data_ready: libxenvchan_data_ready, buffer_space: libxenvchan_buffer_space,
        xs_open: xs_open, xs_close: xs_close, xs_read: xs_read, xs_rm: xs_rm, xs_directory: xs_directory,
        xs_watch: xs_watch, xs_unwatch: xs_unwatch, xs_fileno: xs_fileno, xs_check_watch: xs_check_watch,
        evtchn_bind_unbound_port: xenevtchn_bind_unbound_port, evtchn_bind_interdomain: xenevtchn_bind_interdomain,
        evtchn_notify: xenevtchn_notify)
}
