/*
 * open_service.c - qubes.OpenInVM, run in the domain that opens the file.
 *
 * stdin:  a 256-byte name block, then the file's data up to EOF.
 * stdout: the edited file's data if (and only if) it was not view-only and
 *         its content changed; nothing otherwise.
 * Exit status 0, or 1 with one line on stderr. Every message names only the
 * sanitised file name: stderr reaches the caller's terminal.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SVC OPEN_SERVICE

struct open_job {
    int err;                       /* the service's stderr */
    char name[OPEN_NAME_BLOCK];    /* validated, sanitised */
    int view_only;
    char viewer[PATH_MAX];
    char dir[PATH_MAX];            /* the private directory, "" until made */
    char path[PATH_MAX + OPEN_NAME_BLOCK];
    int original;                  /* an unlinked copy of what arrived, or -1 */
};

/* Receives the data into dir/name (0600, a fresh name in a fresh directory)
 * and, unless view-only, into an unlinked copy to compare with later. */
static int receive_file(struct open_job *j, int in, const char *source, uint64_t min_free_percent) {
    int n = snprintf(j->path, sizeof j->path, "%s/%s", j->dir, j->name);
    if (n < 0 || (size_t)n >= sizeof j->path) {
        say(j->err, SVC ": the temporary path for %s is too long", j->name);
        return -1;
    }
    if (!j->view_only) {
        /* Made and unlinked before the viewer starts: it never sees it. */
        char copy_path[PATH_MAX + 32];
        snprintf(copy_path, sizeof copy_path, "%s/.original-XXXXXX", j->dir);
        j->original = mkostemp(copy_path, O_CLOEXEC);
        if (j->original < 0 || unlink(copy_path) != 0) {
            say(j->err, SVC ": cannot make a temporary file in %s: %s", j->dir, strerror(errno));
            return -1;
        }
    }
    int fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(j->err, SVC ": cannot create %s: %s", j->path, strerror(errno));
        return -1;
    }
    uint64_t bytes = 0;
    int failed_side = 0;
    if (stream_copy(in, fd, j->original, min_free_percent, &bytes, &failed_side) != 0) {
        if (failed_side == 2)
            say(j->err, SVC ": refused the rest of %s from %s: this domain's file system would have less free space "
                "than min_free_percent keeps", j->name, source);
        else if (failed_side == 0)
            say(j->err, SVC ": reading %s from %s failed: %s", j->name, source, strerror(errno));
        else
            say(j->err, SVC ": writing %s failed: %s", j->path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Read-only for the viewer: the file, and the directory so it cannot be
     * swapped for another. Nothing comes back from a view-only copy anyway. */
    if (j->view_only && fchmod(fd, 0400) != 0) {
        say(j->err, SVC ": cannot make %s read-only: %s", j->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        say(j->err, SVC ": writing %s failed: %s", j->path, strerror(errno));
        return -1;
    }
    if (j->view_only && chmod(j->dir, 0500) != 0) {
        say(j->err, SVC ": cannot make %s read-only: %s", j->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* After the viewer: the edited file back on `out` if it changed. */
static int send_back_if_changed(struct open_job *j, int out) {
    int fd = open(j->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        say(j->err, SVC ": the viewer removed %s; nothing is sent back", j->name);
        return 0;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* A symlink or a FIFO in its place would make us send something
         * else, or hang: refused. */
        say(j->err, SVC ": %s is no longer a regular file; nothing is sent back", j->name);
        if (fd >= 0) close(fd);
        return -1;
    }
    int same = files_same(fd, j->original);
    if (same < 0) {
        say(j->err, SVC ": cannot read %s back: %s", j->name, strerror(errno));
        close(fd);
        return -1;
    }
    if (same) {
        close(fd);
        return 0;
    }
    if (st.st_size == 0) {
        /* The protocol has no length: no data means "unchanged". */
        say(j->err, SVC ": %s was emptied; an empty file cannot be sent back", j->name);
        close(fd);
        return -1;
    }
    uint64_t bytes = 0;
    int failed_side = 0;
    int rc = stream_copy(fd, out, -1, 0, &bytes, &failed_side);
    if (rc != 0) say(j->err, SVC ": sending %s back failed: %s", j->name, strerror(errno));
    close(fd);
    return rc;
}

static int run_job(ody_addon *a, struct open_job *j, const ody_service_call *call) {
    unsigned char untrusted_block[OPEN_NAME_BLOCK];
    if (read_exact(call->stdin_fd, untrusted_block, sizeof untrusted_block) != 0) {
        say(j->err, SVC ": %s sent no file name (fewer than %d bytes)", call->source, OPEN_NAME_BLOCK);
        return 1;
    }
    const char *why = NULL;
    if (name_block_parse(untrusted_block, j->name, &j->view_only, &why) != 0) {
        say(j->err, SVC ": refused the file from %s: %s", call->source, why);
        return 1;
    }
    /* Before any data is written: a missing viewer is a quick, clear error. */
    char configured[PATH_MAX];
    const char *viewer = addon_config(a, "viewer", configured, sizeof configured, OPEN_DEFAULT_PROGRAM);
    if (program_resolve(viewer, j->viewer, sizeof j->viewer) != 0) {
        say(j->err, SVC ": viewer \"%s\" %s (config [addon.open-in-vm] viewer)", viewer,
            errno == EINVAL ? "is a relative path; give a name on PATH or an absolute path" : "not found or not executable");
        return 1;
    }
    if (private_dir_create(j->dir, sizeof j->dir) != 0) {
        say(j->err, SVC ": cannot make a temporary directory: %s", strerror(errno));
        j->dir[0] = 0;
        return 1;
    }
    if (receive_file(j, call->stdin_fd, call->source, addon_config_u64(a, "min_free_percent", 5)) != 0) return 1;
    int status = 0;
    if (program_run(j->viewer, j->path, &status) != 0) {
        say(j->err, SVC ": cannot start the viewer %s: %s", j->viewer, strerror(errno));
        return 1;
    }
    if (status != 0) {
        say(j->err, SVC ": the viewer %s exited with status %d; nothing is sent back", j->viewer, status);
        return 1;
    }
    if (j->view_only) return 0;
    return send_back_if_changed(j, call->stdout_fd) == 0 ? 0 : 1;
}

int open_service(ody_addon *a, const ody_service_call *call) {
    struct open_job j;
    memset(&j, 0, sizeof j);
    j.err = call->stderr_fd;
    j.original = -1;
    int status = run_job(a, &j, call);
    if (j.original >= 0) close(j.original);
    if (j.dir[0] != 0 && private_dir_remove(j.dir) != 0) {
        say(j.err, SVC ": cannot remove %s: %s", j.dir, strerror(errno));
        if (status == 0) status = 1;
    }
    return status;
}
