/*
 * render_pages.h - in the disposable: the untrusted PDF into a private temp
 * directory, rendered to one PNG per page by poppler's pdftocairo.
 *
 * Why PNG: pdftocairo has no raw-pixel output (PPM is pdftoppm's), and of
 * what it writes (PNG, JPEG, TIFF, PS, EPS, PDF, SVG) PNG is the only
 * lossless format with a small, fully specified decoder: zlib plus five row
 * filters (png_reader.c). JPEG would lose detail; TIFF's layouts vary.
 *
 * Why one renderer run for all pages, counting the files it leaves: the
 * page count must come before any pixels, and asking pdfinfo for it would
 * mean a second untrusted parse and a second configured program; one run
 * also parses the PDF once, not once per page. The cost is disk space in
 * the disposable for the compressed pages, which are then streamed and
 * deleted one at a time.
 */
#ifndef PDFC_RENDER_PAGES_H
#define PDFC_RENDER_PAGES_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define RENDER_NAME_MAX 32

struct render_job {
    char dir[PATH_MAX];        /* private temp directory (0700) */
    char pdf_path[PATH_MAX + 32];
    char pages_dir[PATH_MAX + 32];
    char log_path[PATH_MAX + 32];
    uint32_t pages;
    char (*page_names)[RENDER_NAME_MAX]; /* [1..pages]: file name in pages_dir */
    char why[256];
};

/* Creates the temp directory. 0, or -1 with job->why. */
int render_job_create(struct render_job *job);
/* Reads the PDF from `fd` until EOF, at most `cap` bytes. */
int render_job_receive(struct render_job *job, int fd, uint64_t cap);
/* Runs `renderer` (absolute path, argv only), then lists its pages. */
int render_job_render(struct render_job *job, const char *renderer, unsigned dpi, uint32_t max_pages,
                      const int *close_fds, int close_count);
/* Path of page n (1-based) into buf. */
int render_job_page_path(const struct render_job *job, uint32_t n, char *buf, size_t size);
/* Removes everything it created; safe to call at any point. */
void render_job_destroy(struct render_job *job);

#endif
