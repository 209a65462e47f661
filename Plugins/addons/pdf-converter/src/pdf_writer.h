/*
 * pdf_writer.h - a minimal PDF writer for pages that are one RGB image
 * each: exactly what the caller rebuilds from the disposable's pixels, and
 * nothing else (no fonts, no scripts, no structure from the original).
 *
 * Pages stream through: each image is deflated row by row (zlib, /Filter
 * /FlateDecode) straight into the file, with its /Length written as an
 * indirect object after the data, so neither side holds a whole page.
 * Use: pdf_writer_begin, then per page pdf_writer_page_begin,
 * pdf_writer_page_rows..., pdf_writer_page_end, then pdf_writer_finish;
 * pdf_writer_free in every case. Functions return 0 or -1 with w->why.
 */
#ifndef PDFC_PDF_WRITER_H
#define PDFC_PDF_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

struct pdf_writer {
    FILE *f;
    uint64_t offset;          /* bytes written so far: the xref needs them */
    uint64_t *object_offsets; /* index = object number */
    uint32_t object_count;    /* highest object number + 1 */
    uint32_t pages, page;     /* declared, begun so far */
    unsigned dpi;
    z_stream z;
    int z_active;
    uint64_t stream_start;
    uint64_t rows_left_bytes; /* pixel bytes still owed to the current page */
    uint64_t min_free_percent;/* of the file system written to, kept free (0: no check) */
    uint64_t room_checked_to; /* offset up to which that was last checked */
    char why[160];
    unsigned char zout[65536];
};

/* min_free_percent: the file system of f keeps that much free, checked
 * every PDF_ROOM_STEP bytes (the pixels come from a disposable that may
 * be hostile: it must not fill the caller's disk). */
#define PDF_ROOM_STEP (8u << 20)
int pdf_writer_begin(struct pdf_writer *w, FILE *f, uint32_t pages, unsigned dpi, uint64_t min_free_percent);
int pdf_writer_page_begin(struct pdf_writer *w, uint32_t width, uint32_t height);
int pdf_writer_page_rows(struct pdf_writer *w, const unsigned char *rgb, size_t size);
int pdf_writer_page_end(struct pdf_writer *w);
/* xref and trailer; flushes f (the caller fsyncs and closes it). */
int pdf_writer_finish(struct pdf_writer *w);
void pdf_writer_free(struct pdf_writer *w);

#endif
