/*
 * stream_reader.c - the receiver's input: big buffers, each refilled with
 * a single read() when the parser has used it up, and the CRC-32 of every
 * byte the parser consumed (the sender compares it with its own: it
 * covers headers, names, data and the end marker, and nothing after).
 *
 * The CRC runs in a second thread, one buffer behind the parser: a used-up
 * buffer is handed over and summed while the parser reads and lands the
 * next one, so the checksum costs the copy no time on a machine with a
 * spare core. Buffers are used round-robin and summed in the same order;
 * a buffer is refilled only once its sum is done. The thread never does
 * I/O, so waiting for it at the end cannot hang. Without the thread
 * (pthread_create failed) the parser sums inline, same result.
 */
#include "filecopy_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *crc_worker(void *arg) {
    struct fc_reader *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->summed == r->retired && !r->quit) pthread_cond_wait(&r->cond, &r->lock);
        if (r->summed == r->retired && r->quit) break;
        size_t slot = (size_t)(r->summed % FC_READER_SLOTS);
        size_t len = r->lens[slot];
        pthread_mutex_unlock(&r->lock);
        uint32_t crc = fc_crc32(r->crc, r->slots[slot], len);
        pthread_mutex_lock(&r->lock);
        r->crc = crc;
        r->summed++;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int fc_reader_init(struct fc_reader *r, int fd) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->size = FC_IO_BUFFER;
    for (int i = 0; i < FC_READER_SLOTS; i++) {
        r->slots[i] = malloc(r->size);
        if (r->slots[i] == NULL) return -1;
    }
    r->buf = r->slots[0];
    if (pthread_mutex_init(&r->lock, NULL) != 0 || pthread_cond_init(&r->cond, NULL) != 0) return -1;
    r->threaded = pthread_create(&r->worker, NULL, crc_worker, r) == 0;
    return 0;
}

/* Hands the consumed part of the current buffer to the CRC. */
static void retire(struct fc_reader *r) {
    size_t slot = (size_t)(r->used % FC_READER_SLOTS);
    size_t len = r->pos;
    r->used++;
    if (!r->threaded) {
        r->crc = fc_crc32(r->crc, r->slots[slot], len);
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->lens[slot] = len;
    r->retired++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* The next buffer, once its previous contents are summed; one read(). */
static int refill(struct fc_reader *r) {
    retire(r);
    size_t slot = (size_t)(r->used % FC_READER_SLOTS);
    if (r->threaded && r->used >= FC_READER_SLOTS) {
        pthread_mutex_lock(&r->lock);
        while (r->summed < r->used - FC_READER_SLOTS + 1) pthread_cond_wait(&r->cond, &r->lock);
        pthread_mutex_unlock(&r->lock);
    }
    r->buf = r->slots[slot];
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

uint32_t fc_reader_crc(struct fc_reader *r) {
    if (r->slots[0] == NULL) return 0;
    retire(r);
    r->pos = r->end = 0;
    if (!r->threaded) return r->crc;
    pthread_mutex_lock(&r->lock);
    while (r->summed < r->retired) pthread_cond_wait(&r->cond, &r->lock);
    uint32_t crc = r->crc;
    pthread_mutex_unlock(&r->lock);
    return crc;
}

void fc_reader_free(struct fc_reader *r) {
    if (r->threaded) {
        pthread_mutex_lock(&r->lock);
        r->quit = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->worker, NULL);
        r->threaded = 0;
    }
    for (int i = 0; i < FC_READER_SLOTS; i++) {
        free(r->slots[i]);
        r->slots[i] = NULL;
    }
    r->buf = NULL;
}
