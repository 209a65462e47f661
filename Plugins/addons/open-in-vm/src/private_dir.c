/*
 * private_dir.c - the service's temporary directory.
 *
 * Every call gets a fresh mkdtemp directory (0700, unguessable name), so the
 * received file never meets an existing file, link or another call's data.
 * Removal goes by directory descriptors and never follows a symlink: the
 * viewer may leave anything behind (backups, lock files, links), and
 * cleaning up must not reach outside.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper than any viewer's leftovers; bounds the recursion. */
#define REMOVE_MAX_DEPTH 32

int private_dir_create(char *path, size_t size) {
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] != '/') base = "/tmp";
    int n = snprintf(path, size, "%s/ody-open-XXXXXX", base);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(path) != NULL ? 0 : -1;
}

/* Empties the directory open as `dir` (the descriptor is consumed). */
static int remove_entries(int dir, int depth) {
    if (depth > REMOVE_MAX_DEPTH) {
        close(dir);
        errno = ELOOP;
        return -1;
    }
    /* A view-only copy's directory is read-only: make it writable again. */
    if (fchmod(dir, 0700) != 0) {
        int e = errno;
        close(dir);
        errno = e;
        return -1;
    }
    int listing = dup(dir);
    DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
    if (d == NULL) {
        int e = errno;
        if (listing >= 0) close(listing);
        close(dir);
        errno = e;
        return -1;
    }
    int result = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(dir, e->d_name, 0) == 0) continue;
        if (errno != EISDIR) {
            result = -1;
            continue;
        }
        int sub = openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || remove_entries(sub, depth + 1) != 0 || unlinkat(dir, e->d_name, AT_REMOVEDIR) != 0)
            result = -1;
    }
    int saved = errno;
    closedir(d);
    close(dir);
    errno = saved;
    return result;
}

int private_dir_remove(const char *path) {
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return -1;
    if (remove_entries(dir, 0) != 0) return -1;
    return rmdir(path);
}
