/* file_stream.c - copying and comparing file data, in bounded chunks. */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

int stream_copy(int in, int out, int copy, uint64_t min_free_percent, uint64_t *bytes, int *failed_side) {
    char *buf = malloc(CHUNK);
    if (buf == NULL) {
        *failed_side = 1;
        return -1;
    }
    uint64_t total = 0, checked = 0;
    int rc = 0;
    for (;;) {
        /* Another domain is filling this file system: it keeps its share free
         * (twice the step: the data may also go to `copy`, on the same one). */
        if (min_free_percent > 0 && total >= checked) {
            if (!addon_fs_has_room(out, 2ull * STREAM_ROOM_STEP, min_free_percent)) {
                *failed_side = 2;
                errno = ENOSPC;
                rc = -1;
                break;
            }
            checked = total + STREAM_ROOM_STEP;
        }
        ssize_t n = read(in, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *failed_side = 0;
            rc = -1;
            break;
        }
        if (n == 0) break;
        if (write_all(out, buf, (size_t)n) != 0 || (copy >= 0 && write_all(copy, buf, (size_t)n) != 0)) {
            *failed_side = 1;
            rc = -1;
            break;
        }
        total += (uint64_t)n;
    }
    int saved = errno;
    free(buf);
    errno = saved;
    *bytes = total;
    return rc;
}

static ssize_t pread_upto(int fd, char *buf, size_t size, off_t at) {
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, at + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int files_same(int a, int b) {
    struct stat sa, sb;
    if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0) return -1;
    if (sa.st_size != sb.st_size) return 0;
    char *ba = malloc(CHUNK), *bb = malloc(CHUNK);
    int result = -1;
    if (ba == NULL || bb == NULL) {
        errno = ENOMEM;
    } else {
        for (off_t at = 0;;) {
            ssize_t na = pread_upto(a, ba, CHUNK, at);
            ssize_t nb = pread_upto(b, bb, CHUNK, at);
            if (na < 0 || nb < 0) break;
            if (na != nb || memcmp(ba, bb, (size_t)na) != 0) {
                result = 0;
                break;
            }
            if (na == 0) {
                result = 1;
                break;
            }
            at += na;
        }
    }
    int saved = errno;
    free(ba);
    free(bb);
    errno = saved;
    return result;
}
