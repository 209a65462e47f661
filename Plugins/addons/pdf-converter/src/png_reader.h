/*
 * png_reader.h - decodes the renderer's PNG files row by row into 8-bit
 * RGB, in the disposable. It accepts only what pdftocairo -png writes:
 * 8-bit RGB or RGBA (alpha composited over white), not interlaced. The
 * input is untrusted (a hostile PDF may control the renderer), so every
 * length is checked; but a wrong pixel here can only harm the caller as
 * much as any picture can, since the caller checks the stream it gets.
 * Functions return 0 or -1 with r->why.
 */
#ifndef PDFC_PNG_READER_H
#define PDFC_PNG_READER_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

struct png_reader {
    FILE *f;
    uint32_t width, height;
    unsigned channels;        /* 3 (RGB) or 4 (RGBA) */
    size_t stride;            /* bytes of one row without its filter byte */
    unsigned char *prev, *cur; /* filter byte + stride each */
    z_stream z;
    int z_active;
    uint32_t idat_left;       /* bytes of the current IDAT chunk not yet read */
    uLong crc;                /* of the current chunk so far */
    uint32_t rows_read;
    char why[160];
    unsigned char in[32768];
};

/* Opens the file and reads its header; width/height are then known. */
int png_reader_open(struct png_reader *r, const char *path, uint32_t max_dimension);
/* The next row as width*3 bytes of RGB. */
int png_reader_row(struct png_reader *r, unsigned char *rgb);
void png_reader_close(struct png_reader *r);

#endif
