/* pixel_stream.c - see pixel_stream.h. Header lines are short (at most
 * "10000 10000"), so a line longer than that is refused before any number
 * is parsed: an endless line cannot make the caller read forever. */
#include "pixel_stream.h"
#include "pdfc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Longest valid header line without its '\n': "10000 10000". */
#define HEADER_LINE_MAX 11

void pixel_stream_init(struct pixel_stream *s, int fd) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
}

/* Refills the buffer: 1 with data, 0 at EOF, -1 on a read error. */
static int fill(struct pixel_stream *s) {
    if (s->pos < s->len) return 1;
    if (s->eof) return 0;
    for (;;) {
        ssize_t n = read(s->fd, s->buf, sizeof s->buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(s->why, sizeof s->why, "cannot read from the disposable: %s", strerror(errno));
            return -1;
        }
        s->pos = 0;
        s->len = (size_t)n;
        if (n == 0) s->eof = 1;
        return n > 0;
    }
}

/* One header line into line[0..HEADER_LINE_MAX], without its '\n'. */
static int read_line(struct pixel_stream *s, const char *what, char *line, size_t *len) {
    size_t n = 0;
    for (;;) {
        int r = fill(s);
        if (r < 0) return -1;
        if (r == 0) {
            snprintf(s->why, sizeof s->why, "the stream ends %s %s", n == 0 ? "before the" : "inside the", what);
            return -1;
        }
        char c = (char)s->buf[s->pos++];
        if (c == '\n') break;
        if (n == HEADER_LINE_MAX) {
            snprintf(s->why, sizeof s->why, "the %s line is longer than %d bytes", what, HEADER_LINE_MAX);
            return -1;
        }
        line[n++] = c;
    }
    line[n] = 0;
    *len = n;
    return 0;
}

int pixel_stream_parse_number(const char *untrusted, size_t len, uint32_t min, uint32_t max, uint32_t *out) {
    if (len == 0 || len > 5) return -1;
    if (untrusted[0] == '0' && len > 1) return -1;  /* one spelling per number */
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (untrusted[i] < '0' || untrusted[i] > '9') return -1;
        v = v * 10 + (uint32_t)(untrusted[i] - '0');
    }
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* Only digits are ever quoted back, and only once checked to be digits. */
static int all_digits(const char *p, size_t n) {
    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    return 1;
}

int pixel_stream_page_count(struct pixel_stream *s, uint32_t *pages) {
    char untrusted_line[HEADER_LINE_MAX + 1];
    size_t n = 0;
    if (read_line(s, "page count", untrusted_line, &n) != 0) return -1;
    if (pixel_stream_parse_number(untrusted_line, n, 1, PDFC_MAX_PAGES, pages) == 0) return 0;
    if (all_digits(untrusted_line, n) && !(untrusted_line[0] == '0' && n > 1))
        snprintf(s->why, sizeof s->why, "page count %s is outside 1..%u", untrusted_line, PDFC_MAX_PAGES);
    else
        snprintf(s->why, sizeof s->why, "the page count is not a plain decimal number");
    return -1;
}

int pixel_stream_page_size(struct pixel_stream *s, uint32_t *width, uint32_t *height) {
    char untrusted_line[HEADER_LINE_MAX + 1];
    size_t n = 0;
    if (read_line(s, "page size", untrusted_line, &n) != 0) return -1;
    const char *space = memchr(untrusted_line, ' ', n);
    if (space == NULL) {
        snprintf(s->why, sizeof s->why, "the page size line is not \"<width> <height>\"");
        return -1;
    }
    size_t wlen = (size_t)(space - untrusted_line), hlen = n - wlen - 1;
    const char *h = space + 1;
    if (!all_digits(untrusted_line, wlen) || !all_digits(h, hlen) || (untrusted_line[0] == '0' && wlen > 1) ||
        (h[0] == '0' && hlen > 1)) {
        snprintf(s->why, sizeof s->why, "the page size line is not two plain decimal numbers");
        return -1;
    }
    if (pixel_stream_parse_number(untrusted_line, wlen, 1, PDFC_MAX_DIMENSION, width) != 0 ||
        pixel_stream_parse_number(h, hlen, 1, PDFC_MAX_DIMENSION, height) != 0) {
        snprintf(s->why, sizeof s->why, "page size %.*s x %.*s is outside 1..%u pixels a side", (int)wlen,
                 untrusted_line, (int)hlen, h, PDFC_MAX_DIMENSION);
        return -1;
    }
    return 0;
}

int pixel_stream_pixels(struct pixel_stream *s, unsigned char *dst, size_t size) {
    while (size > 0) {
        int r = fill(s);
        if (r < 0) return -1;
        if (r == 0) {
            snprintf(s->why, sizeof s->why, "the stream ends inside a page's pixels (short data)");
            return -1;
        }
        size_t n = s->len - s->pos;
        if (n > size) n = size;
        memcpy(dst, s->buf + s->pos, n);
        s->pos += n;
        dst += n;
        size -= n;
    }
    return 0;
}

int pixel_stream_end(struct pixel_stream *s) {
    int r = fill(s);
    if (r < 0) return -1;
    if (r > 0) {
        snprintf(s->why, sizeof s->why, "the stream goes on after the last page (extra data)");
        return -1;
    }
    return 0;
}
