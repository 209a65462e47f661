/*
 * vmm_native_shim.h - the few calls the vmm-native plugin cannot make from Swift.
 *
 * Why C: glibc 2.36 declares pidfd_open/pidfd_send_signal in <sys/pidfd.h>,
 * dladdr's Dl_info, pipe2 and F_SETPIPE_SZ need _GNU_SOURCE; Swift's Glibc module imports none of
 * these, and Swift cannot call the variadic syscall(2). Each wrapper is one line.
 */
#ifndef VMM_NATIVE_SHIM_H
#define VMM_NATIVE_SHIM_H

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* A file descriptor that becomes readable when `pid` exits; works for
 * processes that are not our children (re-adopted domains). */
static inline int vmm_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* kill(2) through a pidfd: never hits a recycled pid. */
static inline int vmm_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The file name of the .so holding this shim (dladdr), or NULL. */
const char *vmm_module_path(void);

/* pipe2(2); and fcntl(F_SETPIPE_SZ). */
int vmm_pipe2(int fds[2], int flags);
int vmm_set_pipe_size(int fd, int size);

/* idtype P_PIDFD for waitid(2), which Swift's idtype_t import lacks. */
static inline int vmm_p_pidfd(void) { return 3; }

#endif
