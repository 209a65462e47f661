/*
 * ody_support.h - the few libc calls Swift cannot reach. Each is here only
 * because Glibc's Swift overlay does not import it (it needs _GNU_SOURCE or
 * is a macro/variadic); keep this file tiny.
 */
#ifndef ODY_SUPPORT_H
#define ODY_SUPPORT_H
#include <sys/types.h>

/* accept4(..., SOCK_CLOEXEC): needs _GNU_SOURCE. CLOEXEC must be atomic with
 * the accept, or a concurrent posix_spawn could leak the fd into a child. */
int ody_accept_cloexec(int listen_fd);

/* SO_PEERCRED: struct ucred needs _GNU_SOURCE. Returns 0 and fills out. */
int ody_peer_cred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34+, _GNU_SOURCE): the
 * detached daemon must not keep its caller's descriptors (a pipe held open
 * by a daemon makes the caller's read wait forever). */
#include <spawn.h>
int ody_spawn_closefrom(posix_spawn_file_actions_t *actions, int from);

#endif
