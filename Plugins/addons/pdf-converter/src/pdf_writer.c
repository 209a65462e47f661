/* pdf_writer.c - see pdf_writer.h.
 *
 * Object numbers are fixed by position, so every reference is known before
 * it is written: 1 catalog, 2 page tree, and for page i (from 0)
 * 3+4i the page, 4+4i its content stream, 5+4i its image, 6+4i the image's
 * length. A page is the image scaled to the page's full size, which is the
 * pixel size at the rendering resolution (72 points an inch). */
#include "pdf_writer.h"

#include "addon_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define OBJ_CATALOG 1u
#define OBJ_PAGES 2u
#define OBJ_PAGE(i) (3u + 4u * (i))
#define OBJ_CONTENT(i) (4u + 4u * (i))
#define OBJ_IMAGE(i) (5u + 4u * (i))
#define OBJ_LENGTH(i) (6u + 4u * (i))

static int fail(struct pdf_writer *w, const char *what) {
    if (w->why[0] == 0) snprintf(w->why, sizeof w->why, "%s", what);
    return -1;
}

/* Cross-reference offsets have 10 digits: a PDF stops short of 10^10
 * bytes. This also bounds the disk a disposable's pixels can fill here. */
#define PDF_MAX_BYTES 9999999999ull

static int put(struct pdf_writer *w, const void *data, size_t size) {
    if (w->offset + size > PDF_MAX_BYTES) return fail(w, "the new PDF would pass 10 GB, the most a PDF's cross-reference table can address");
    if (w->min_free_percent > 0 && w->offset + size >= w->room_checked_to) {
        if (!addon_fs_has_room(fileno(w->f), PDF_ROOM_STEP, w->min_free_percent))
            return fail(w, "the new PDF would leave less free space than min_free_percent keeps");
        w->room_checked_to = w->offset + size + PDF_ROOM_STEP;
    }
    if (size > 0 && fwrite(data, 1, size, w->f) != size) {
        snprintf(w->why, sizeof w->why, "cannot write the PDF: %s", strerror(errno));
        return -1;
    }
    w->offset += size;
    return 0;
}

static int putf(struct pdf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(struct pdf_writer *w, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text) return fail(w, "internal error: PDF text too long");
    return put(w, text, (size_t)n);
}

static int begin_object(struct pdf_writer *w, uint32_t number) {
    if (number >= w->object_count) return fail(w, "internal error: object number out of range");
    w->object_offsets[number] = w->offset;
    return putf(w, "%u 0 obj\n", number);
}

/* Pixels to points, as text with 4 decimals; integers only, so the locale
 * cannot turn the decimal point into a comma. */
static void points(char *out, size_t size, uint32_t pixels, unsigned dpi) {
    uint64_t tenthousandths = ((uint64_t)pixels * 720000u + dpi / 2) / dpi;
    snprintf(out, size, "%llu.%04llu", (unsigned long long)(tenthousandths / 10000),
             (unsigned long long)(tenthousandths % 10000));
}

int pdf_writer_begin(struct pdf_writer *w, FILE *f, uint32_t pages, unsigned dpi, uint64_t min_free_percent) {
    memset(w, 0, sizeof *w);
    w->f = f;
    w->min_free_percent = min_free_percent;
    w->pages = pages;
    w->dpi = dpi;
    if (pages == 0 || dpi == 0) return fail(w, "internal error: no pages or no resolution");
    w->object_count = OBJ_LENGTH(pages - 1) + 1;
    w->object_offsets = calloc(w->object_count, sizeof *w->object_offsets);
    if (w->object_offsets == NULL) return fail(w, "out of memory");
    /* The binary comment line tells transfer tools the file is binary. */
    if (putf(w, "%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n") != 0) return -1;
    if (begin_object(w, OBJ_CATALOG) != 0 ||
        putf(w, "<< /Type /Catalog /Pages %u 0 R >>\nendobj\n", OBJ_PAGES) != 0)
        return -1;
    if (begin_object(w, OBJ_PAGES) != 0 || putf(w, "<< /Type /Pages /Count %u /Kids [", pages) != 0) return -1;
    for (uint32_t i = 0; i < pages; i++)
        if (putf(w, "%s%u 0 R", i % 8 == 0 ? "\n" : " ", OBJ_PAGE(i)) != 0) return -1;
    return putf(w, "\n] >>\nendobj\n");
}

int pdf_writer_page_begin(struct pdf_writer *w, uint32_t width, uint32_t height) {
    if (w->z_active || w->page >= w->pages) return fail(w, "internal error: page out of order");
    uint32_t i = w->page;
    char pw[32], ph[32];
    points(pw, sizeof pw, width, w->dpi);
    points(ph, sizeof ph, height, w->dpi);
    if (begin_object(w, OBJ_PAGE(i)) != 0 ||
        putf(w,
             "<< /Type /Page /Parent %u 0 R /MediaBox [0 0 %s %s]\n"
             "   /Resources << /XObject << /Im0 %u 0 R >> >> /Contents %u 0 R >>\nendobj\n",
             OBJ_PAGES, pw, ph, OBJ_IMAGE(i), OBJ_CONTENT(i)) != 0)
        return -1;
    char content[160];
    int n = snprintf(content, sizeof content, "q\n%s 0 0 %s 0 0 cm\n/Im0 Do\nQ\n", pw, ph);
    if (n < 0 || (size_t)n >= sizeof content) return fail(w, "internal error: content stream too long");
    if (begin_object(w, OBJ_CONTENT(i)) != 0 || putf(w, "<< /Length %d >>\nstream\n", n) != 0 ||
        put(w, content, (size_t)n) != 0 || putf(w, "endstream\nendobj\n") != 0)
        return -1;
    if (begin_object(w, OBJ_IMAGE(i)) != 0 ||
        putf(w,
             "<< /Type /XObject /Subtype /Image /Width %u /Height %u /ColorSpace /DeviceRGB\n"
             "   /BitsPerComponent 8 /Filter /FlateDecode /Length %u 0 R >>\nstream\n",
             width, height, OBJ_LENGTH(i)) != 0)
        return -1;
    memset(&w->z, 0, sizeof w->z);
    if (deflateInit(&w->z, Z_DEFAULT_COMPRESSION) != Z_OK) return fail(w, "cannot start zlib compression");
    w->z_active = 1;
    w->stream_start = w->offset;
    w->rows_left_bytes = (uint64_t)width * height * 3u;
    return 0;
}

/* Runs deflate over the input, writing every full output buffer. */
static int deflate_out(struct pdf_writer *w, int flush) {
    for (;;) {
        w->z.next_out = w->zout;
        w->z.avail_out = sizeof w->zout;
        int rc = deflate(&w->z, flush);
        if (rc == Z_STREAM_ERROR) return fail(w, "zlib compression failed");
        if (put(w, w->zout, sizeof w->zout - w->z.avail_out) != 0) return -1;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : (w->z.avail_in == 0 && w->z.avail_out != 0)) return 0;
    }
}

int pdf_writer_page_rows(struct pdf_writer *w, const unsigned char *rgb, size_t size) {
    if (!w->z_active || size > w->rows_left_bytes) return fail(w, "internal error: more pixels than the page holds");
    w->rows_left_bytes -= size;
    while (size > 0) {
        /* avail_in is a uInt: feed huge buffers in slices. */
        uInt slice = size > (1u << 30) ? (1u << 30) : (uInt)size;
        w->z.next_in = (Bytef *)(uintptr_t)rgb;
        w->z.avail_in = slice;
        if (deflate_out(w, Z_NO_FLUSH) != 0) return -1;
        rgb += slice;
        size -= slice;
    }
    return 0;
}

int pdf_writer_page_end(struct pdf_writer *w) {
    if (!w->z_active || w->rows_left_bytes != 0) return fail(w, "internal error: page ended before its pixels");
    w->z.next_in = NULL;
    w->z.avail_in = 0;
    if (deflate_out(w, Z_FINISH) != 0) return -1;
    deflateEnd(&w->z);
    w->z_active = 0;
    uint64_t length = w->offset - w->stream_start;
    uint32_t i = w->page;
    if (putf(w, "\nendstream\nendobj\n") != 0 || begin_object(w, OBJ_LENGTH(i)) != 0 ||
        putf(w, "%llu\nendobj\n", (unsigned long long)length) != 0)
        return -1;
    w->page++;
    return 0;
}

int pdf_writer_finish(struct pdf_writer *w) {
    if (w->z_active || w->page != w->pages) return fail(w, "internal error: PDF finished before its last page");
    uint64_t xref = w->offset;
    /* Each xref entry is exactly 20 bytes: 10 + ' ' + 5 + ' ' + 'n' + " \n". */
    if (putf(w, "xref\n0 %u\n0000000000 65535 f \n", w->object_count) != 0) return -1;
    for (uint32_t n = 1; n < w->object_count; n++) {
        if (w->object_offsets[n] == 0) return fail(w, "internal error: an object was never written");
        if (putf(w, "%010llu 00000 n \n", (unsigned long long)w->object_offsets[n]) != 0) return -1;
    }
    if (putf(w, "trailer\n<< /Size %u /Root %u 0 R >>\nstartxref\n%llu\n%%%%EOF\n", w->object_count, OBJ_CATALOG,
             (unsigned long long)xref) != 0)
        return -1;
    if (fflush(w->f) != 0) {
        snprintf(w->why, sizeof w->why, "cannot write the PDF: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void pdf_writer_free(struct pdf_writer *w) {
    if (w->z_active) deflateEnd(&w->z);
    w->z_active = 0;
    free(w->object_offsets);
    w->object_offsets = NULL;
}
