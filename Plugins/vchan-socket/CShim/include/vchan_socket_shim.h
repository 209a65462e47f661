/*
 * vchan_socket_shim.h - the few calls the socket vchan needs that Swift's
 * Glibc overlay cannot reach. Each one is C for a stated reason; keep it tiny.
 */
#ifndef VCHAN_SOCKET_SHIM_H
#define VCHAN_SOCKET_SHIM_H
#include <stddef.h>

/* accept4(SOCK_CLOEXEC): behind _GNU_SOURCE. */
int vs_accept_cloexec(int listen_fd);

/* dup3(O_CLOEXEC): behind _GNU_SOURCE. Used to put the accepted connection
 * on the listening socket's fd number, so a channel's fd never changes. */
int vs_dup3_cloexec(int oldfd, int newfd);

/* ioctl(FIONREAD / SIOCOUTQ): ioctl is variadic, which Swift cannot call. */
int vs_ioctl_int(int fd, unsigned long request, int *out);
unsigned long vs_fionread(void);
unsigned long vs_siocoutq(void);

/* sendmsg/recvmsg with SCM_RIGHTS: CMSG_* are macros Swift cannot use.
 * vs_send_fds sends `len` bytes (at least 1) with `nfds` descriptors attached
 * and returns bytes sent or -1. vs_recv_fds receives up to `len` bytes and up
 * to `max_fds` descriptors (MSG_CMSG_CLOEXEC), storing the count in *nfds;
 * descriptors beyond max_fds are closed. Returns bytes read, 0 at EOF, or -1. */
long vs_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags);
long vs_recv_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int flags);

/* The zero-copy data path of qrexec data channels (Qrexec/Splice.swift):
 * splice(2) and F_SETPIPE_SZ are behind _GNU_SOURCE. vs_splice moves up to
 * `len` bytes between `in_fd` and `out_fd` (one of them a pipe) without
 * offsets, SPLICE_F_MOVE | SPLICE_F_NONBLOCK, plus SPLICE_F_MORE if `more`.
 * vs_set_pipe_size returns the new size or -1. */
long vs_splice(int in_fd, int out_fd, size_t len, int more);
int vs_set_pipe_size(int fd, int size);

/* getsockopt(SO_PEERCRED): struct ucred is behind _GNU_SOURCE. The pid and
 * ids of the process that connected, as seen from the caller's pid and user
 * namespaces. Returns 0 or -1 (errno). */
int vs_peer_cred(int fd, int *pid, unsigned *uid, unsigned *gid);

/* pipe2(O_CLOEXEC): behind _GNU_SOURCE. */
int vs_pipe_cloexec(int fds[2]);

#endif
