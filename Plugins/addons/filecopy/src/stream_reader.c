/*
 * stream_reader.c - the receiver's input: one big buffer, refilled with a
 * single read() whenever it runs dry, and the CRC-32 of every byte handed
 * out (the sender compares it with its own: it covers headers, names,
 * data and the end marker, exactly what was consumed).
 */
#include "filecopy_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fc_reader_init(struct fc_reader *r, int fd) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->size = FC_IO_BUFFER;
    r->buf = malloc(r->size);
    return r->buf != NULL ? 0 : -1;
}

void fc_reader_free(struct fc_reader *r) {
    free(r->buf);
    r->buf = NULL;
}

/* One read() into the empty buffer: 0, or -1 (errno 0 at end of stream). */
static int refill(struct fc_reader *r) {
    r->pos = r->end = 0;
    for (;;) {
        ssize_t n = read(r->fd, r->buf, r->size);
        if (n > 0) {
            r->end = (size_t)n;
            return 0;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = 0;
        return -1;
    }
}

int fc_reader_chunk(struct fc_reader *r, size_t max, const unsigned char **data, size_t *got) {
    if (r->pos == r->end && refill(r) != 0) return -1;
    size_t n = r->end - r->pos;
    if (n > max) n = max;
    *data = r->buf + r->pos;
    *got = n;
    r->crc = fc_crc32(r->crc, *data, n);
    r->pos += n;
    return 0;
}

int fc_reader_exact(struct fc_reader *r, void *dst, size_t n) {
    unsigned char *out = dst;
    while (n > 0) {
        const unsigned char *p;
        size_t got;
        if (fc_reader_chunk(r, n, &p, &got) != 0) return -1;
        memcpy(out, p, got);
        out += got;
        n -= got;
    }
    return 0;
}
