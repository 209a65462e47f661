/* split_gpg_spawn.c - see split_gpg_spawn.h. */
#define _GNU_SOURCE
#include "split_gpg_spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* The options the vault always puts first: no terminal, no questions, no
 * network helper, no photo viewer, and a gpg that dies rather than carry on
 * when its status channel is gone. */
static const char *const fixed_options[] = {
    "--no-tty", "--batch", "--disable-dirmngr", "--photo-viewer=/bin/true", "--exit-on-status-write-error",
};
#define FIXED_COUNT (sizeof fixed_options / sizeof fixed_options[0])

/* Every descriptor this process inherited is marked close-on-exec, so gpg
 * gets the relayed pipes and nothing else (a leaked descriptor would be a
 * channel nobody filters). close_range where the kernel has it, else a walk
 * of /proc/self/fd. */
static int cloexec_everything(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != self) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
    return 0;
}

static int listed(const int *fds, int count, int fd) {
    for (int i = 0; i < count; i++)
        if (fds[i] == fd) return 1;
    return 0;
}

/* Moves fd to a number gpg is not told about, so that dup2-ing the pipes
 * into place in any order never overwrites one that is still to be moved. */
static int away_from_targets(int fd, const int *targets, int count) {
    if (!listed(targets, count, fd)) return fd;
    int min = 3;
    for (;;) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, min);
        if (moved < 0) return -1;
        if (!listed(targets, count, moved)) {
            close(fd);
            return moved;
        }
        close(moved);
        min = moved + 1;
    }
}

static int set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int gpg_spawn(const char *gpg_path, const struct gpg_request *req, struct gpg_child *child, char *why,
              size_t why_size) {
    int targets[2 * GPG_MAX_FDS];
    int child_ends[2 * GPG_MAX_FDS];
    int count = 0;
    for (int i = 0; i < req->in_count; i++) targets[count++] = req->in_fds[i];
    for (int i = 0; i < req->out_count; i++) targets[count++] = req->out_fds[i];
    for (int i = 0; i < count; i++) child_ends[i] = -1;
    for (int i = 0; i < GPG_MAX_FDS; i++) child->in_pipes[i] = child->out_pipes[i] = -1;
    child->pid = -1;
    child->pidfd = -1;

    if (cloexec_everything() != 0) {
        snprintf(why, why_size, "cannot mark inherited descriptors close-on-exec: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            snprintf(why, why_size, "pipe: %s", strerror(errno));
            goto fail;
        }
        int is_input = i < req->in_count;
        /* gpg reads its inputs from p[0] and writes its outputs to p[1]. */
        child_ends[i] = is_input ? p[0] : p[1];
        int ours = is_input ? p[1] : p[0];
        if (is_input) child->in_pipes[i] = ours;
        else child->out_pipes[i - req->in_count] = ours;
        /* stdin and stdout carry the bulk data: 1 MiB pipes instead of
         * 64 KiB mean fewer wake-ups between the relay and gpg (about 0.5 ms
         * of a 1 MiB signature). A refusal (pipe-max-size, quota) is fine. */
        if (targets[i] == 0 || targets[i] == 1) (void)fcntl(ours, F_SETPIPE_SZ, 1 << 20);
        if (set_nonblocking(ours) != 0) {
            snprintf(why, why_size, "fcntl: %s", strerror(errno));
            goto fail;
        }
    }
    for (int i = 0; i < count; i++) {
        int moved = away_from_targets(child_ends[i], targets, count);
        if (moved < 0) {
            snprintf(why, why_size, "cannot place gpg's descriptors: %s", strerror(errno));
            goto fail;
        }
        child_ends[i] = moved;
    }

    const char *argv[1 + FIXED_COUNT + sizeof req->gpg_args / sizeof req->gpg_args[0] + 1];
    int argc = 0;
    argv[argc++] = gpg_path;
    for (size_t i = 0; i < FIXED_COUNT; i++) argv[argc++] = fixed_options[i];
    for (int i = 0; i < req->gpg_argc; i++) argv[argc++] = req->gpg_args[i];
    argv[argc] = NULL;

    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    for (int i = 0; rc == 0 && i < count; i++) rc = posix_spawn_file_actions_adddup2(&fa, child_ends[i], targets[i]);
    if (rc == 0) rc = posix_spawn(&child->pid, gpg_path, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(why, why_size, "cannot run %s: %s", gpg_path, strerror(rc));
        child->pid = -1;
        goto fail;
    }
    for (int i = 0; i < count; i++) close(child_ends[i]);
#ifdef SYS_pidfd_open
    child->pidfd = (int)syscall(SYS_pidfd_open, child->pid, 0);
    if (child->pidfd >= 0) (void)fcntl(child->pidfd, F_SETFD, FD_CLOEXEC);
#endif
    return 0;

fail:
    for (int i = 0; i < count; i++)
        if (child_ends[i] >= 0) close(child_ends[i]);
    for (int i = 0; i < GPG_MAX_FDS; i++) {
        if (child->in_pipes[i] >= 0) close(child->in_pipes[i]);
        if (child->out_pipes[i] >= 0) close(child->out_pipes[i]);
        child->in_pipes[i] = child->out_pipes[i] = -1;
    }
    return -1;
}
