/* See agent_shim.h: fork/exec must be C. */
#define _GNU_SOURCE
#include "agent_shim.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_fail(int pipe_w, int step_errno) {
    int e = step_errno;
    (void)!write(pipe_w, &e, sizeof e);
    _exit(127);
}

/* Signals whose disposition is not SIG_DFL (the agent's handlers and
 * SIG_IGN, the Swift runtime's crash handlers), found once: by the first
 * spawn the agent has set its own. Only these are reset in the vfork child
 * (a handler must not run in a child sharing our memory; SIG_IGN would
 * survive exec); resetting all 64 cost 64 system calls in the window where
 * the parent waits, a millisecond under TCG. */
static uint64_t changed_signals;
static pthread_once_t changed_once = PTHREAD_ONCE_INIT;
static void find_changed_signals(void) {
    for (int s = 1; s < NSIG && s <= 64; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL) changed_signals |= 1ull << (s - 1);
    }
}

pid_t agent_spawn(const char *path, char *const argv[], char *const envp[],
                  int in_fd, int out_fd, int err_fd,
                  int set_ids, uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
                  const char *cwd, int *err) {
    pthread_once(&changed_once, find_changed_signals);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) { *err = errno; return -1; }
    /* vfork: the child borrows the parent's memory until execve, which saves
     * copying the page tables (about a third of an exec round trip). The
     * child only makes raw-ish system calls, writes nothing the parent reads
     * except through the pipe, and ends in execve or _exit. It has its own
     * fd table, cwd and signal dispositions (no CLONE_FILES/FS/SIGHAND). */
    pid_t pid = vfork();
    if (pid < 0) { *err = errno; close(p[0]); close(p[1]); return -1; }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        sigset_t none;
        sigemptyset(&none);
        for (int s = 1; s < NSIG && s <= 64; s++)
            if (changed_signals & (1ull << (s - 1))) signal(s, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        /* Move the stdio sources above 2 first so dup2 cannot clobber one another. */
        int fds[3] = { in_fd, out_fd, err_fd };
        for (int i = 0; i < 3; i++) {
            int f = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (f < 0) child_fail(p[1], errno);
            fds[i] = f;
        }
        for (int i = 0; i < 3; i++) if (dup2(fds[i], i) < 0) child_fail(p[1], errno);
        /* Close everything else except the error pipe (close-on-exec). */
        if (p[1] > 3) {
            if (syscall(SYS_close_range, 3u, (unsigned)p[1] - 1, 0u) != 0)
                for (int f = 3; f < p[1]; f++) close(f);
        }
        if (syscall(SYS_close_range, (unsigned)p[1] + 1, ~0u, 0u) != 0)
            for (int f = p[1] + 1; f < 4096; f++) close(f);
        if (set_ids) {
            /* Raw syscalls, as glibc's posix_spawn does: the libc wrappers
             * broadcast the change to every thread of the process (setxid),
             * and a vfork child shares the parent's thread list. */
            if (syscall(SYS_setgroups, (size_t)ngroups, groups) != 0) child_fail(p[1], errno);
            if (syscall(SYS_setgid, gid) != 0) child_fail(p[1], errno);
            if (syscall(SYS_setuid, uid) != 0) child_fail(p[1], errno);
        }
        if (cwd == NULL || chdir(cwd) != 0) (void)!chdir("/");
        execve(path, argv, envp);
        child_fail(p[1], errno);
    }
    /* Also in the parent, so the group exists before anyone signals it. */
    setpgid(pid, pid);
    close(p[1]);
    int child_errno = 0;
    ssize_t n;
    do n = read(p[0], &child_errno, sizeof child_errno); while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n == sizeof child_errno) {
        /* exec (or a step before it) failed: the child exits 127 at once.
         * Reap it here; if the agent's reaper got it first, ECHILD is fine. */
        *err = child_errno;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -1;
    }
    return pid;
}

int agent_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int agent_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
