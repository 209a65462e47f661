/* png_reader.c - see png_reader.h. PNG: an 8-byte signature, then chunks
 * (u32 length, 4-byte type, data, CRC-32 of type and data), IHDR first,
 * the zlib stream split over consecutive IDAT chunks, IEND last. Each
 * decoded row is a filter byte and the filtered bytes (PNG spec, ch. 9). */
#include "png_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MAX 0x7fffffffu /* the spec's limit on a chunk's length */

static int fail(struct png_reader *r, const char *what) {
    snprintf(r->why, sizeof r->why, "%s", what);
    return -1;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_bytes(struct png_reader *r, void *buf, size_t n) {
    if (fread(buf, 1, n, r->f) != n) return fail(r, ferror(r->f) ? "cannot read a rendered page" : "a rendered page is truncated");
    return 0;
}

/* A chunk's length and type; starts its CRC. */
static int chunk_header(struct png_reader *r, uint32_t *len, unsigned char type[4]) {
    unsigned char h[8];
    if (read_bytes(r, h, sizeof h) != 0) return -1;
    *len = be32(h);
    if (*len > CHUNK_MAX) return fail(r, "a rendered page has an oversized chunk");
    memcpy(type, h + 4, 4);
    r->crc = crc32(crc32(0L, Z_NULL, 0), type, 4);
    return 0;
}

static int chunk_data(struct png_reader *r, unsigned char *buf, uint32_t len) {
    if (read_bytes(r, buf, len) != 0) return -1;
    r->crc = crc32(r->crc, buf, len);
    return 0;
}

static int chunk_crc(struct png_reader *r) {
    unsigned char c[4];
    if (read_bytes(r, c, sizeof c) != 0) return -1;
    if (be32(c) != (uint32_t)r->crc) return fail(r, "a rendered page is corrupt (CRC mismatch)");
    return 0;
}

/* Skips a whole chunk's data (checking its CRC). */
static int chunk_skip(struct png_reader *r, uint32_t len) {
    while (len > 0) {
        uint32_t n = len > sizeof r->in ? (uint32_t)sizeof r->in : len;
        if (chunk_data(r, r->in, n) != 0) return -1;
        len -= n;
    }
    return chunk_crc(r);
}

/* Moves to the next IDAT chunk, skipping ancillary chunks before the first
 * one. `first`: before any image data (ancillary chunks allowed). */
static int next_idat(struct png_reader *r, int first) {
    for (;;) {
        uint32_t len;
        unsigned char type[4];
        if (chunk_header(r, &len, type) != 0) return -1;
        if (memcmp(type, "IDAT", 4) == 0) {
            r->idat_left = len;
            return 0;
        }
        if (!first || memcmp(type, "IEND", 4) == 0) return fail(r, "a rendered page's image data ends early");
        /* Critical chunks (uppercase first letter) we do not know change
         * the image's meaning: refuse. PLTE is only a hint for RGB. */
        if ((type[0] & 0x20) == 0 && memcmp(type, "PLTE", 4) != 0) return fail(r, "a rendered page has an unknown critical chunk");
        if (chunk_skip(r, len) != 0) return -1;
    }
}

int png_reader_open(struct png_reader *r, const char *path, uint32_t max_dimension) {
    memset(r, 0, sizeof *r);
    r->f = fopen(path, "rbe");
    if (r->f == NULL) {
        snprintf(r->why, sizeof r->why, "cannot open a rendered page: %s", strerror(errno));
        return -1;
    }
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char sig[8], ihdr[13], type[4];
    uint32_t len;
    if (read_bytes(r, sig, sizeof sig) != 0) return -1;
    if (memcmp(sig, signature, sizeof sig) != 0) return fail(r, "a rendered page is not a PNG file");
    if (chunk_header(r, &len, type) != 0) return -1;
    if (memcmp(type, "IHDR", 4) != 0 || len != sizeof ihdr) return fail(r, "a rendered page has no PNG header");
    if (chunk_data(r, ihdr, sizeof ihdr) != 0 || chunk_crc(r) != 0) return -1;
    r->width = be32(ihdr);
    r->height = be32(ihdr + 4);
    unsigned depth = ihdr[8], color = ihdr[9], compression = ihdr[10], filter = ihdr[11], interlace = ihdr[12];
    if (r->width == 0 || r->height == 0 || r->width > max_dimension || r->height > max_dimension) {
        snprintf(r->why, sizeof r->why, "a rendered page is %ux%u pixels; at most %ux%u can be sent (lower the resolution)",
                 r->width, r->height, max_dimension, max_dimension);
        return -1;
    }
    if (depth != 8 || (color != 2 && color != 6) || compression != 0 || filter != 0 || interlace != 0)
        return fail(r, "a rendered page is not an 8-bit RGB/RGBA non-interlaced PNG");
    r->channels = color == 2 ? 3 : 4;
    r->stride = (size_t)r->width * r->channels;
    r->prev = calloc(1, r->stride + 1);
    r->cur = calloc(1, r->stride + 1);
    if (r->prev == NULL || r->cur == NULL) return fail(r, "out of memory");
    if (inflateInit(&r->z) != Z_OK) return fail(r, "cannot start zlib decompression");
    r->z_active = 1;
    return next_idat(r, 1);
}

/* Feeds more compressed bytes to zlib, crossing IDAT chunk boundaries. */
static int feed(struct png_reader *r) {
    while (r->idat_left == 0) {
        if (chunk_crc(r) != 0 || next_idat(r, 0) != 0) return -1;
    }
    uint32_t n = r->idat_left > sizeof r->in ? (uint32_t)sizeof r->in : r->idat_left;
    if (chunk_data(r, r->in, n) != 0) return -1;
    r->idat_left -= n;
    r->z.next_in = r->in;
    r->z.avail_in = n;
    return 0;
}

static unsigned char paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return (unsigned char)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* Undoes the row's filter in place (prev holds the previous row, zeros for
 * the first). bpp = bytes per pixel, the distance to the "left" byte. */
static int unfilter(struct png_reader *r) {
    unsigned char *x = r->cur + 1, *up = r->prev + 1;
    size_t n = r->stride, bpp = r->channels;
    switch (r->cur[0]) {
    case 0: break;
    case 1: for (size_t i = bpp; i < n; i++) x[i] = (unsigned char)(x[i] + x[i - bpp]); break;
    case 2: for (size_t i = 0; i < n; i++) x[i] = (unsigned char)(x[i] + up[i]); break;
    case 3:
        for (size_t i = 0; i < n; i++) x[i] = (unsigned char)(x[i] + (((i >= bpp ? x[i - bpp] : 0) + up[i]) >> 1));
        break;
    case 4:
        for (size_t i = 0; i < n; i++)
            x[i] = (unsigned char)(x[i] + paeth(i >= bpp ? x[i - bpp] : 0, up[i], i >= bpp ? up[i - bpp] : 0));
        break;
    default: return fail(r, "a rendered page has an unknown PNG row filter");
    }
    return 0;
}

int png_reader_row(struct png_reader *r, unsigned char *rgb) {
    if (!r->z_active || r->rows_read >= r->height) return fail(r, "internal error: no more rows");
    r->z.next_out = r->cur;
    r->z.avail_out = (uInt)(r->stride + 1);
    while (r->z.avail_out > 0) {
        if (r->z.avail_in == 0 && feed(r) != 0) return -1;
        int rc = inflate(&r->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END && r->z.avail_out > 0) return fail(r, "a rendered page has fewer rows than it says");
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return fail(r, "a rendered page's image data is corrupt");
    }
    if (unfilter(r) != 0) return -1;
    const unsigned char *x = r->cur + 1;
    if (r->channels == 3) {
        memcpy(rgb, x, r->stride);
    } else {
        /* Transparent areas become white paper, as a viewer shows them. */
        for (uint32_t i = 0; i < r->width; i++, x += 4) {
            unsigned a = x[3];
            for (int k = 0; k < 3; k++) rgb[3 * i + k] = (unsigned char)((x[k] * a + 255u * (255u - a) + 127u) / 255u);
        }
    }
    unsigned char *t = r->prev;
    r->prev = r->cur;
    r->cur = t;
    r->rows_read++;
    return 0;
}

void png_reader_close(struct png_reader *r) {
    if (r->z_active) inflateEnd(&r->z);
    r->z_active = 0;
    free(r->prev);
    free(r->cur);
    r->prev = r->cur = NULL;
    if (r->f != NULL) fclose(r->f);
    r->f = NULL;
}
