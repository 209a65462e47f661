/* See vchan_socket_shim.h for why each function is C. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vchan_socket_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int vs_accept_cloexec(int listen_fd) { return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC); }

int vs_dup3_cloexec(int oldfd, int newfd) { return dup3(oldfd, newfd, O_CLOEXEC); }

int vs_ioctl_int(int fd, unsigned long request, int *out) { return ioctl(fd, request, out); }
unsigned long vs_fionread(void) { return FIONREAD; }
unsigned long vs_siocoutq(void) { return SIOCOUTQ; }

#define VS_MAX_FDS 16

long vs_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags) {
    if (nfds < 0 || nfds > VS_MAX_FDS || len == 0) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char b[CMSG_SPACE(sizeof(int) * VS_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&ctl, 0, sizeof ctl);
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
}

long vs_recv_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int flags) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char b[CMSG_SPACE(sizeof(int) * VS_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.b;
    msg.msg_controllen = sizeof ctl.b;
    *nfds = 0;
    long n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *in = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, in + i, sizeof fd);
            if (*nfds < max_fds) fds[(*nfds)++] = fd; else close(fd);
        }
    }
    return n;
}

long vs_splice(int in_fd, int out_fd, size_t len, int more) {
    unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
    return (long)splice(in_fd, NULL, out_fd, NULL, len, flags);
}

int vs_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int vs_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int vs_peer_cred(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -1;
    *pid = c.pid;
    *uid = c.uid;
    *gid = c.gid;
    return 0;
}
