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
    let xs_watch: ody_xs_watch_fn
    let xs_unwatch: ody_xs_unwatch_fn
    let xs_fileno: ody_xs_fileno_fn
    let xs_check_watch: ody_xs_check_watch_fn
    let evtchn_bind_unbound_port: ody_xenevtchn_bind_unbound_port_fn
    let evtchn_bind_interdomain: ody_xenevtchn_bind_interdomain_fn
    let evtchn_notify: ody_xenevtchn_notify_fn

    public init(server_init: ody_libxenvchan_server_init_fn, client_init: ody_libxenvchan_client_init_fn,
                close: ody_libxenvchan_close_fn, read: ody_libxenvchan_read_fn, write: ody_libxenvchan_write_fn,
                wait: ody_libxenvchan_wait_fn, fd_for_select: ody_libxenvchan_fd_for_select_fn,
                is_open: ody_libxenvchan_is_open_fn, data_ready: ody_libxenvchan_data_ready_fn,
                buffer_space: ody_libxenvchan_buffer_space_fn, xs_open: ody_xs_open_fn, xs_close: ody_xs_close_fn,
                xs_read: ody_xs_read_fn, xs_rm: ody_xs_rm_fn, xs_directory: ody_xs_directory_fn,
                xs_watch: ody_xs_watch_fn, xs_unwatch: ody_xs_unwatch_fn, xs_fileno: ody_xs_fileno_fn,
                xs_check_watch: ody_xs_check_watch_fn, evtchn_bind_unbound_port: ody_xenevtchn_bind_unbound_port_fn,
                evtchn_bind_interdomain: ody_xenevtchn_bind_interdomain_fn, evtchn_notify: ody_xenevtchn_notify_fn) {
        self.server_init = server_init; self.client_init = client_init; self.close = close
        self.read = read; self.write = write; self.wait = wait; self.fd_for_select = fd_for_select
        self.is_open = is_open; self.data_ready = data_ready; self.buffer_space = buffer_space
        self.xs_open = xs_open; self.xs_close = xs_close; self.xs_read = xs_read; self.xs_rm = xs_rm
        self.xs_directory = xs_directory
        self.xs_watch = xs_watch; self.xs_unwatch = xs_unwatch; self.xs_fileno = xs_fileno; self.xs_check_watch = xs_check_watch
        self.evtchn_bind_unbound_port = evtchn_bind_unbound_port; self.evtchn_bind_interdomain = evtchn_bind_interdomain
        self.evtchn_notify = evtchn_notify
    }
}
