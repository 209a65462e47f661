/* The libxenvchan and libxenstore headers vchan-xen imports, plus what Swift
 * cannot write itself:
 *  - struct libxenvchan's `blocking` is a one-bit bitfield: the helper below
 *    clears it (the plugin does its own blocking, see XenChannel.swift).
 * and a function-pointer type for every call the plugin makes: it does not
 * link the libraries but resolves these with dlsym (XenVchanAPI.swift), so
 * the types come from the declarations themselves and cannot drift. */
#ifndef ODYSSEY_CXENVCHAN_SHIM_H
#define ODYSSEY_CXENVCHAN_SHIM_H
#include <stdint.h>
#include <libxenvchan.h>
#include <xenevtchn.h>
#include <xenstore.h>

/* libxenvchan_server_init leaves `blocking` uninitialised (malloc): every
 * channel is made non-blocking before its first use. */
static inline void ody_xenvchan_set_nonblocking(struct libxenvchan *ctrl) { ctrl->blocking = 0; }

/* The channel's event-channel handle: XenChannel binds a loopback pair of
 * ports on it to wake its own blocked waiter (peer death, close). */
static inline xenevtchn_handle *ody_xenvchan_event_handle(struct libxenvchan *ctrl) { return ctrl->event; }

/* The libraries these headers (libxen-dev 4.17) describe. libxenvchan's
 * soname carries the Xen release; libxenstore's is stable. */
#define ODY_LIBXENVCHAN_SONAME "libxenvchan.so.4.17"
#define ODY_LIBXENSTORE_SONAME "libxenstore.so.4"
#define ODY_LIBXENEVTCHN_SONAME "libxenevtchn.so.1"

static const uint32_t ODY_XS_TRANSACTION_NONE = XBT_NULL;

#define ODY_XV_FN(name) typedef __typeof__(name) *ody_##name##_fn;
ODY_XV_FN(libxenvchan_server_init)
ODY_XV_FN(libxenvchan_client_init)
ODY_XV_FN(libxenvchan_close)
ODY_XV_FN(libxenvchan_read)
ODY_XV_FN(libxenvchan_write)
ODY_XV_FN(libxenvchan_wait)
ODY_XV_FN(libxenvchan_fd_for_select)
ODY_XV_FN(libxenvchan_is_open)
ODY_XV_FN(libxenvchan_data_ready)
ODY_XV_FN(libxenvchan_buffer_space)
ODY_XV_FN(xs_open)
ODY_XV_FN(xs_close)
ODY_XV_FN(xs_read)
ODY_XV_FN(xs_rm)
ODY_XV_FN(xs_directory)
ODY_XV_FN(xs_watch)
ODY_XV_FN(xs_unwatch)
ODY_XV_FN(xs_fileno)
ODY_XV_FN(xs_check_watch)
ODY_XV_FN(xenevtchn_bind_unbound_port)
ODY_XV_FN(xenevtchn_bind_interdomain)
ODY_XV_FN(xenevtchn_notify)
#undef ODY_XV_FN
#endif
