/*
 * pixel_stream.h - the caller's strict reader of the disposable's answer
 * (format in pdfc.h). Everything read here is untrusted until a function
 * below has checked it; a failure leaves a one-line reason in `why` that
 * never quotes the other side's bytes (they could be terminal escapes).
 */
#ifndef PDFC_PIXEL_STREAM_H
#define PDFC_PIXEL_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct pixel_stream {
    int fd;
    size_t pos, len;
    int eof;
    char why[160];
    unsigned char buf[65536];
};

void pixel_stream_init(struct pixel_stream *s, int fd);

/* "<pagecount>\n", 1..PDFC_MAX_PAGES. 0, or -1 with s->why. */
int pixel_stream_page_count(struct pixel_stream *s, uint32_t *pages);

/* "<W> <H>\n", each 1..PDFC_MAX_DIMENSION. 0, or -1 with s->why. */
int pixel_stream_page_size(struct pixel_stream *s, uint32_t *width, uint32_t *height);

/* Exactly `size` bytes of pixels. 0, or -1 with s->why (short data). */
int pixel_stream_pixels(struct pixel_stream *s, unsigned char *dst, size_t size);

/* After the last page: 0 if the stream ends here, -1 with s->why if not. */
int pixel_stream_end(struct pixel_stream *s);

/* Strict decimal: 1..5 ASCII digits, no sign, no leading zero, in
 * [min, max]. Exposed for the header lines' parser only. */
int pixel_stream_parse_number(const char *untrusted, size_t len, uint32_t min, uint32_t max, uint32_t *out);

#endif
