/*
 * stream_writer.c - the sender's output: headers, names and the data of
 * small files gather in one big buffer (one write() for many entries);
 * large files are read straight into it, so each byte is copied once out
 * of the page cache and once into the socket. The CRC-32 covers every
 * byte put.
 *
 * Before each write, a poll() asks whether the receiver has spoken: it
 * answers before the end only to refuse (or it is gone). Then the rest of
 * the stream is pointless, and writing on could block forever on a peer
 * that no longer reads.
 */
#include "filecopy_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fc_writer_init(struct fc_writer *w, int fd) {
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->size = FC_IO_BUFFER;
    w->buf = malloc(w->size);
    return w->buf != NULL ? 0 : -1;
}

void fc_writer_free(struct fc_writer *w) {
    free(w->buf);
    w->buf = NULL;
}

static int write_out(struct fc_writer *w, const unsigned char *p, size_t n) {
    while (n > 0) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN | POLLOUT};
        int pr = poll(&pfd, 1, -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return -1;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            w->receiver_spoke = 1;
            errno = EPIPE;
            return -1;
        }
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k < 0) {
            if (errno == EPIPE || errno == ECONNRESET) w->receiver_spoke = 1;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fc_writer_flush(struct fc_writer *w) {
    if (w->len == 0) return 0;
    int rc = write_out(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

int fc_writer_put(struct fc_writer *w, const void *data, size_t n) {
    const unsigned char *p = data;
    w->crc = fc_crc32(w->crc, p, n);
    w->total += n;
    while (n > 0) {
        if (w->len == w->size && fc_writer_flush(w) != 0) return -1;
        size_t k = w->size - w->len;
        if (k > n) k = n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
    return 0;
}

int fc_writer_space(struct fc_writer *w, size_t min, unsigned char **room, size_t *room_size) {
    if (w->size - w->len < min && fc_writer_flush(w) != 0) return -1;
    *room = w->buf + w->len;
    *room_size = w->size - w->len;
    return 0;
}

void fc_writer_commit(struct fc_writer *w, size_t n) {
    w->crc = fc_crc32(w->crc, w->buf + w->len, n);
    w->total += n;
    w->len += n;
}
