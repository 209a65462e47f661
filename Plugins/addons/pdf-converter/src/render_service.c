/*
 * render_service.c - qubes.PdfConvert, run in the disposable: PDF in on
 * stdin, pixels out on stdout (format in pdfc.h), a one-line error on
 * stderr and a non-zero exit otherwise.
 *
 * Every page's size is checked before the first byte goes out, so a PDF
 * the caller would refuse (too many or too large pages) fails here with a
 * useful message instead of a truncated stream. Pages are then decoded
 * and sent one row at a time; each PNG is deleted once sent.
 */
#include "pdfc.h"
#include "png_reader.h"
#include "render_pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_page_sizes(struct render_job *job, struct png_reader *png, char *why, size_t size) {
    char path[PATH_MAX + 64];
    for (uint32_t n = 1; n <= job->pages; n++) {
        if (render_job_page_path(job, n, path, sizeof path) != 0) {
            snprintf(why, size, "page %u: path too long", n);
            return -1;
        }
        int rc = png_reader_open(png, path, PDFC_MAX_DIMENSION);
        if (rc != 0) snprintf(why, size, "page %u: %s", n, png->why);
        png_reader_close(png);
        if (rc != 0) return -1;
    }
    return 0;
}

static int send_pages(struct render_job *job, struct png_reader *png, int out, char *why, size_t size) {
    char line[32];
    int n = snprintf(line, sizeof line, "%u\n", job->pages);
    if (write_all(out, line, (size_t)n) != 0) {
        snprintf(why, size, "the caller stopped reading");
        return -1;
    }
    unsigned char *rgb = malloc((size_t)PDFC_MAX_DIMENSION * 3u);
    if (rgb == NULL) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    char path[PATH_MAX + 64];
    int rc = 0;
    for (uint32_t p = 1; rc == 0 && p <= job->pages; p++) {
        if (render_job_page_path(job, p, path, sizeof path) != 0 || png_reader_open(png, path, PDFC_MAX_DIMENSION) != 0) {
            snprintf(why, size, "page %u: %s", p, png->why[0] ? png->why : "path too long");
            png_reader_close(png);
            rc = -1;
            break;
        }
        n = snprintf(line, sizeof line, "%u %u\n", png->width, png->height);
        if (write_all(out, line, (size_t)n) != 0) rc = -1;
        for (uint32_t y = 0; rc == 0 && y < png->height; y++) {
            if (png_reader_row(png, rgb) != 0) {
                snprintf(why, size, "page %u: %s", p, png->why);
                rc = -1;
            } else if (write_all(out, rgb, (size_t)png->width * 3u) != 0) {
                rc = -1;
            }
        }
        if (rc != 0 && why[0] == 0) snprintf(why, size, "the caller stopped reading");
        png_reader_close(png);
        (void)unlink(path);
    }
    free(rgb);
    return rc;
}

int pdfc_run_service(ody_addon *a, const ody_service_call *call) {
    int err = call->stderr_fd;
    unsigned dpi = 0;
    if (pdfc_resolution(a, err, &dpi) != 0) return 1;
    char renderer[512];
    const char *r = addon_config(a, "renderer", renderer, sizeof renderer, PDFC_DEFAULT_RENDERER);

    struct render_job *job = malloc(sizeof *job);
    struct png_reader *png = malloc(sizeof *png);
    if (job == NULL || png == NULL) {
        say(err, "%s: out of memory", PDFC_SERVICE);
        free(job);
        free(png);
        return 1;
    }
    char why[256] = "";
    int status = 1;
    const int channel_fds[] = {call->stdin_fd, call->stdout_fd};
    if (render_job_create(job) != 0 || render_job_receive(job, call->stdin_fd, PDFC_MAX_PDF_BYTES) != 0 ||
        render_job_render(job, r, dpi, PDFC_MAX_PAGES, channel_fds, 2) != 0) {
        snprintf(why, sizeof why, "%s", job->why);
    } else if (check_page_sizes(job, png, why, sizeof why) == 0 && send_pages(job, png, call->stdout_fd, why, sizeof why) == 0) {
        status = 0;
    }
    if (status != 0) say(err, "%s: %s", PDFC_SERVICE, why);
    render_job_destroy(job);
    free(job);
    free(png);
    return status;
}
