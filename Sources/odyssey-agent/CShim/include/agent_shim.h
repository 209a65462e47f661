/*
 * agent_shim.h - what the agent must do in C: the code between fork and exec
 * (after fork in a threaded process only async-signal-safe calls are allowed,
 * which Swift cannot promise: it may allocate or take locks).
 */
#ifndef AGENT_SHIM_H
#define AGENT_SHIM_H
#include <sys/types.h>

/*
 * Forks (vfork) and execs `path` with `argv`/`envp` in a new process group, with
 * stdin/stdout/stderr from the three fds (duplicated; every other fd is
 * closed), the default signal dispositions and an empty signal mask, in
 * directory `cwd` (or / if it cannot be entered). If `set_ids` is non-zero,
 * supplementary groups become `groups[0..ngroups)`, then gid, then uid
 * (order matters: setuid last). Returns the child's pid, or -1 with *err set
 * to the errno of the step that failed (in the parent or, through a
 * close-on-exec pipe, in the child before exec).
 */
pid_t agent_spawn(const char *path, char *const argv[], char *const envp[],
                  int in_fd, int out_fd, int err_fd,
                  int set_ids, uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
                  const char *cwd, int *err);

/* pipe2(O_CLOEXEC): behind _GNU_SOURCE. */
int agent_pipe_cloexec(int fds[2]);

/* pidfd_open(pid, 0), close-on-exec (Linux 5.3; glibc 2.36 has no wrapper
 * and syscall() is variadic, which Swift cannot call): readable once the
 * child exits. -1 with errno where the kernel lacks it. */
int agent_pidfd_open(pid_t pid);

#endif
