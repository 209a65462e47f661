/*
 * edited_copy.c - the client's side of what comes back from qubes.OpenInVM.
 *
 * The bytes are untrusted, but they are only ever the content of the file
 * the user chose to edit there, so they are not parsed: they are stored and
 * compared. The original is replaced by rename(2) from the same directory,
 * so it is never half-written, and only if the content differs. How much may
 * come back is bounded (edited_copy_limit): the target, often a disposable
 * that opened a hostile file, could otherwise fill this domain's disk.
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

#define CHUNK (64 * 1024)

uint64_t edited_copy_limit(ody_addon *a, uint64_t original_size) {
    uint64_t fixed = addon_config_u64(a, "return_max_bytes", 1ull << 30);
    uint64_t factor = addon_config_u64(a, "return_max_factor", 4);
    uint64_t scaled = factor != 0 && original_size > UINT64_MAX / factor ? UINT64_MAX : original_size * factor;
    return scaled > fixed ? scaled : fixed;
}

void edited_copy_init(struct edited_copy *c, const char *dir, int original, uint64_t limit) {
    memset(c, 0, sizeof *c);
    c->dir = dir;
    c->original = original;
    c->fd = -1;
    c->limit = limit;
}

static int fail(struct edited_copy *c, const char *what) {
    c->error = errno != 0 ? errno : EIO;
    c->failed = what;
    return -1;
}

static int store(struct edited_copy *c, const char *buf, size_t n, char *orig) {
    if (c->fd < 0) {
        int len = snprintf(c->path, sizeof c->path, "%s/.ody-open-XXXXXX", strcmp(c->dir, "/") == 0 ? "" : c->dir);
        if (len < 0 || (size_t)len >= sizeof c->path) {
            errno = ENAMETOOLONG;
            return fail(c, "creating a temporary file beside it");
        }
        c->fd = mkostemp(c->path, O_CLOEXEC);
        if (c->fd < 0) return fail(c, "creating a temporary file beside it");
    }
    if (write_all(c->fd, buf, n) != 0) return fail(c, "writing the edited copy");
    if (!c->differs) {
        /* A short read is a difference too: the copy is longer. */
        ssize_t m = pread(c->original, orig, n, (off_t)c->bytes);
        if (m != (ssize_t)n || memcmp(orig, buf, n) != 0) c->differs = 1;
    }
    return 0;
}

void edited_copy_receive(struct edited_copy *c, int channel) {
    char *buf = malloc(CHUNK), *orig = malloc(CHUNK);
    if (buf == NULL || orig == NULL) {
        fail(c, "receiving the edited copy");
        free(buf);
        free(orig);
        return;
    }
    for (;;) {
        ssize_t n = read(channel, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fail(c, "receiving the edited copy");
            break;
        }
        if (n == 0) break;
        if ((uint64_t)n > c->limit - c->bytes) {
            c->too_big = 1;
            break;
        }
        if (c->dir != NULL && store(c, buf, (size_t)n, orig) != 0) break;
        c->bytes += (uint64_t)n;
    }
    free(buf);
    free(orig);
    struct stat st;
    if (c->fd >= 0 && !c->differs && fstat(c->original, &st) == 0 && (uint64_t)st.st_size != c->bytes) c->differs = 1;
}

void edited_copy_discard(struct edited_copy *c) {
    if (c->fd < 0) return;
    close(c->fd);
    unlink(c->path);
    c->fd = -1;
}

static int same_file_state(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int edited_copy_install(struct edited_copy *c, const struct open_request *r, const char *real, const struct stat *before) {
    struct stat now;
    /* Edited here too while it was open there: neither edit is thrown away. */
    if (stat(real, &now) != 0 || !same_file_state(&now, before)) {
        say(r->err, "%s: %s changed here while it was open in %s; the edited copy is kept as %s", r->command, r->file,
            r->target, c->path);
        close(c->fd);
        c->fd = -1;
        return 1;
    }
    /* The original's permission bits, never its set-id or sticky bits: the
     * content now comes from another domain. */
    if (fchmod(c->fd, before->st_mode & 0777) != 0 ||
        (geteuid() == 0 && fchown(c->fd, before->st_uid, before->st_gid) != 0) || fsync(c->fd) != 0) {
        say(r->err, "%s: cannot prepare the edited copy of %s: %s", r->command, r->file, strerror(errno));
        edited_copy_discard(c);
        return 1;
    }
    int closed = close(c->fd);
    c->fd = -1;
    if (closed != 0 || rename(c->path, real) != 0) {
        say(r->err, "%s: cannot replace %s: %s", r->command, r->file, strerror(errno));
        unlink(c->path);
        return 1;
    }
    say(r->out, "%s: updated with the copy edited in %s", r->file, r->target);
    return 0;
}
