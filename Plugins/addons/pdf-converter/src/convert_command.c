/*
 * convert_command.c - ody-convert-pdf FILE...: the caller's side.
 *
 * For each FILE: call qubes.PdfConvert in a new disposable, send the PDF,
 * read back pixels only (checked by pixel_stream.c; the first bad byte
 * ends the conversion), write a new PDF from them (pdf_writer.c) into a
 * hidden temp file, rename it to NAME.trusted.pdf only once the whole
 * stream was good and the disposable exited 0, then archive the original
 * into ~/QubesUntrustedPDFs/. A refused stream leaves no output behind.
 */
#define _GNU_SOURCE
#include "pdfc.h"
#include "output_files.h"
#include "pdf_writer.h"
#include "pixel_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: ody-convert-pdf [--help] FILE...\n"
    "Makes each untrusted PDF FILE safe to open: it is rendered to pixels in a\n"
    "new disposable, only the pixels come back, and a new PDF is built from them\n"
    "here as NAME.trusted.pdf beside FILE (never overwriting an existing file).\n"
    "The original is moved to ~/" PDFC_ARCHIVE_DIR "/. Text in the result is an\n"
    "image: it can no longer be selected or searched.\n";

/* The temp file being written, removed if the user interrupts (Ctrl-C):
 * an unfinished output must not be left behind under any name. */
static char interrupted_temp[PATH_MAX];
static volatile sig_atomic_t have_temp;

static void remove_temp_and_die(int sig) {
    if (have_temp) (void)unlink(interrupted_temp);  /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void watch_temp(const char *path) {
    have_temp = 0;
    if (path == NULL) return;
    snprintf(interrupted_temp, sizeof interrupted_temp, "%s", path);
    have_temp = 1;
}

static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temp_and_die;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        (void)sigaction(fatal_signals[i], &sa, NULL);
}

/* One conversion's state, so every exit path can clean up the same way. */
struct conversion {
    ody_addon *addon;
    const char *file;
    unsigned dpi;
    int err_fd;
    char final_path[PATH_MAX];
    char temp_path[PATH_MAX];
    int temp_fd;          /* the output being written, until receive_pages takes it */
    uint32_t pages;
};

/* Streams the PDF into the call; 0, or -1 if the disposable stopped
 * reading (its own message, if any, reaches stderr through qrexec). */
static int send_pdf(int in, int sock) {
    char buf[65536];
    for (;;) {
        ssize_t n = read_upto(in, buf, sizeof buf);
        if (n < 0) return -1;
        if (n == 0) return 0;
        if (write_all(sock, buf, (size_t)n) != 0) return -1;
        if ((size_t)n < sizeof buf) return 0;
    }
}

/* Reads, checks and writes every page into the temp file c->temp_fd
 * (closed here). 0, or -1 with a message already said. */
static int receive_pages(struct conversion *c, struct pixel_stream *ps) {
    FILE *f = fdopen(c->temp_fd, "wb");
    if (f == NULL) {
        say(c->err_fd, "%s: %s: cannot write %s: %s", PDFC_COMMAND, c->file, c->temp_path, strerror(errno));
        return -1;
    }
    c->temp_fd = -1;  /* f owns it now */
    if (pixel_stream_page_count(ps, &c->pages) != 0) {
        say(c->err_fd, "%s: %s: refused the disposable's answer: %s", PDFC_COMMAND, c->file, ps->why);
        fclose(f);
        return -1;
    }
    char why[256];
    struct pdf_writer *w = calloc(1, sizeof *w);  /* zeroed: pdf_writer_free is safe before begin */
    unsigned char *row = malloc((size_t)PDFC_MAX_DIMENSION * 3u);
    int rc = -1;
    const char *stream_why = NULL, *write_why = NULL;
    if (w == NULL || row == NULL) {
        say(c->err_fd, "%s: %s: out of memory", PDFC_COMMAND, c->file);
        goto out;
    }
    uint64_t min_free = addon_config_u64(c->addon, "min_free_percent", 5);
    if (pdf_writer_begin(w, f, c->pages, c->dpi, min_free) != 0) { write_why = w->why; goto out; }
    for (uint32_t p = 0; p < c->pages; p++) {
        uint32_t width = 0, height = 0;
        if (pixel_stream_page_size(ps, &width, &height) != 0) { stream_why = ps->why; goto out; }
        if (pdf_writer_page_begin(w, width, height) != 0) { write_why = w->why; goto out; }
        size_t row_bytes = (size_t)width * 3u;
        for (uint32_t y = 0; y < height; y++) {
            if (pixel_stream_pixels(ps, row, row_bytes) != 0) { stream_why = ps->why; goto out; }
            if (pdf_writer_page_rows(w, row, row_bytes) != 0) { write_why = w->why; goto out; }
        }
        if (pdf_writer_page_end(w) != 0) { write_why = w->why; goto out; }
        say(c->err_fd, "%s: %s: page %u/%u (%ux%u pixels)", PDFC_COMMAND, c->file, p + 1, c->pages, width, height);
    }
    if (pixel_stream_end(ps) != 0) { stream_why = ps->why; goto out; }
    if (pdf_writer_finish(w) != 0) { write_why = w->why; goto out; }
    if (set_default_mode(fileno(f), why) != 0) {
        say(c->err_fd, "%s: %s: %s", PDFC_COMMAND, c->file, why);
        goto out;
    }
    if (fsync(fileno(f)) != 0) {
        say(c->err_fd, "%s: %s: cannot write %s: %s", PDFC_COMMAND, c->file, c->temp_path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (stream_why != NULL) say(c->err_fd, "%s: %s: refused the disposable's answer: %s", PDFC_COMMAND, c->file, stream_why);
    if (write_why != NULL) say(c->err_fd, "%s: %s: %s", PDFC_COMMAND, c->file, write_why);
    if (w != NULL) pdf_writer_free(w);
    free(w);
    free(row);
    if (fclose(f) != 0 && rc == 0) {
        say(c->err_fd, "%s: %s: cannot write %s: %s", PDFC_COMMAND, c->file, c->temp_path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* The call itself: send, receive, and the disposable's exit status. */
static int convert_in_disposable(struct conversion *c, int in) {
    int sock = -1;
    uint64_t call_id = 0;
    if (addon_call(c->addon, "@dispvm", PDFC_SERVICE, &sock, &call_id, c->err_fd) != 0) return -1;
    /* The service reads the whole PDF before it answers, so sending first
     * and reading after cannot deadlock with an honest disposable. */
    int sent = send_pdf(in, sock);
    (void)shutdown(sock, SHUT_WR);
    int rc = -1;
    struct pixel_stream *ps = malloc(sizeof *ps);
    if (ps == NULL) {
        say(c->err_fd, "%s: %s: out of memory", PDFC_COMMAND, c->file);
    } else {
        pixel_stream_init(ps, sock);
        rc = receive_pages(c, ps);
        free(ps);
    }
    /* Closing first: a disposable still writing gets EPIPE and ends. */
    close(sock);
    int status = addon_call_finish(c->addon, call_id);
    if (status == 126) {
        say(c->err_fd, "%s: %s: the call to %s was refused by policy", PDFC_COMMAND, c->file, PDFC_SERVICE);
        return -1;
    }
    if (status == 127) {
        say(c->err_fd, "%s: %s: the disposable has no %s service", PDFC_COMMAND, c->file, PDFC_SERVICE);
        return -1;
    }
    if (status != 0) {
        say(c->err_fd, "%s: %s: the conversion failed in the disposable (exit status %d)", PDFC_COMMAND, c->file,
            status);
        return -1;
    }
    if (rc == 0 && sent != 0) {
        say(c->err_fd, "%s: %s: the disposable stopped reading the PDF before its end", PDFC_COMMAND, c->file);
        return -1;
    }
    return rc;
}

static int convert_one(ody_addon *a, const char *file, unsigned dpi, int out_fd, int err_fd) {
    struct conversion c;
    memset(&c, 0, sizeof c);
    c.temp_fd = -1;
    c.addon = a;
    c.file = file;
    c.dpi = dpi;
    c.err_fd = err_fd;
    char why[256];

    int in = open(file, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        say(err_fd, "%s: %s: %s", PDFC_COMMAND, file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        say(err_fd, "%s: %s: not a regular file", PDFC_COMMAND, file);
        close(in);
        return -1;
    }
    if ((unsigned long long)st.st_size > PDFC_MAX_PDF_BYTES) {
        say(err_fd, "%s: %s: larger than the disposable accepts (%llu MiB)", PDFC_COMMAND, file,
            PDFC_MAX_PDF_BYTES >> 20);
        close(in);
        return -1;
    }
    if (trusted_output_path(file, c.final_path, sizeof c.final_path, why) != 0) {
        say(err_fd, "%s: %s", PDFC_COMMAND, why);
        close(in);
        return -1;
    }
    struct stat existing;
    if (lstat(c.final_path, &existing) == 0 || errno != ENOENT) {
        say(err_fd, "%s: %s: %s already exists; not overwriting it", PDFC_COMMAND, file, c.final_path);
        close(in);
        return -1;
    }

    /* Created before the call: an unwritable directory fails here, before
     * a disposable is started for nothing. */
    if (create_temp_beside(c.final_path, c.temp_path, sizeof c.temp_path, &c.temp_fd, why) != 0) {
        say(err_fd, "%s: %s: %s", PDFC_COMMAND, file, why);
        close(in);
        return -1;
    }
    watch_temp(c.temp_path);
    int rc = convert_in_disposable(&c, in);
    close(in);
    if (c.temp_fd >= 0) close(c.temp_fd);
    if (rc == 0 && rename_no_replace(c.temp_path, c.final_path) != 0) {
        if (errno == EEXIST)
            say(err_fd, "%s: %s: %s appeared meanwhile; not overwriting it", PDFC_COMMAND, file, c.final_path);
        else
            say(err_fd, "%s: %s: cannot create %s: %s", PDFC_COMMAND, file, c.final_path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) (void)unlink(c.temp_path);
    watch_temp(NULL);
    if (rc != 0) {
        say(err_fd, "%s: %s: not converted; no output written", PDFC_COMMAND, file);
        return -1;
    }
    char archived[PATH_MAX];
    if (archive_original(file, archived, sizeof archived, why) != 0) {
        say(err_fd, "%s: %s: converted to %s, but %s", PDFC_COMMAND, file, c.final_path, why);
        return -1;
    }
    say(out_fd, "%s: %s -> %s (%u page%s); original moved to %s", PDFC_COMMAND, file, c.final_path, c.pages,
        c.pages == 1 ? "" : "s", archived);
    return 0;
}

int pdfc_run_command(ody_addon *a, const ody_command_call *call) {
    int out = call->stdout_fd, err = call->stderr_fd;
    int files = 0, options_done = 0;
    for (int i = 1; i < call->argc; i++) {
        const char *arg = call->argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = 1;
        } else if (!options_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            (void)write_all(out, usage, sizeof usage - 1);
            return 0;
        } else if (!options_done && arg[0] == '-' && arg[1] != 0) {
            say(err, "%s: unknown option %s", PDFC_COMMAND, arg);
            (void)write_all(err, usage, sizeof usage - 1);
            return 2;
        } else {
            files++;
        }
    }
    if (files == 0) {
        (void)write_all(err, usage, sizeof usage - 1);
        return 2;
    }
    unsigned dpi = 0;
    if (pdfc_resolution(a, err, &dpi) != 0) return 1;
    catch_interrupts();
    int failed = 0;
    options_done = 0;
    for (int i = 1; i < call->argc; i++) {
        const char *arg = call->argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (convert_one(a, arg, dpi, out, err) != 0) failed++;
    }
    if (failed > 0 && files > 1) say(err, "%s: %d of %d files not converted", PDFC_COMMAND, failed, files);
    return failed > 0 ? 1 : 0;
}
