/* See ody_support.h for why each of these is C. */
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/socket.h>
#include <spawn.h>
#include "ody_support.h"

int ody_accept_cloexec(int listen_fd) {
    return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

int ody_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int ody_peer_cred(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -1;
    if (pid) *pid = c.pid;
    if (uid) *uid = c.uid;
    if (gid) *gid = c.gid;
    return 0;
}
