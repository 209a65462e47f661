/* render_pages.c - see render_pages.h. */
#define _GNU_SOURCE
#include "render_pages.h"
#include "addon_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PAGE_PREFIX "page"

static int fail_errno(struct render_job *job, const char *what) {
    snprintf(job->why, sizeof job->why, "%s: %s", what, strerror(errno));
    return -1;
}

int render_job_create(struct render_job *job) {
    memset(job, 0, sizeof *job);
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/') tmp = "/tmp";
    int n = snprintf(job->dir, sizeof job->dir, "%s/ody-pdfconvert.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof job->dir) {
        snprintf(job->why, sizeof job->why, "TMPDIR is too long");
        job->dir[0] = 0;
        return -1;
    }
    if (mkdtemp(job->dir) == NULL) {
        job->dir[0] = 0;
        return fail_errno(job, "cannot create a temporary directory");
    }
    snprintf(job->pdf_path, sizeof job->pdf_path, "%s/untrusted.pdf", job->dir);
    snprintf(job->pages_dir, sizeof job->pages_dir, "%s/pages", job->dir);
    snprintf(job->log_path, sizeof job->log_path, "%s/renderer.log", job->dir);
    if (mkdir(job->pages_dir, 0700) != 0) return fail_errno(job, "cannot create a temporary directory");
    return 0;
}

int render_job_receive(struct render_job *job, int fd, uint64_t cap) {
    int out = open(job->pdf_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) return fail_errno(job, "cannot store the PDF");
    char buf[65536];
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read_upto(fd, buf, sizeof buf);
        if (n < 0) {
            rc = fail_errno(job, "cannot read the PDF");
            break;
        }
        total += (uint64_t)n;
        if (total > cap) {
            snprintf(job->why, sizeof job->why, "the PDF is larger than %llu MiB", (unsigned long long)(cap >> 20));
            rc = -1;
            break;
        }
        if (n > 0 && write_all(out, buf, (size_t)n) != 0) {
            rc = fail_errno(job, "cannot store the PDF");
            break;
        }
        if ((size_t)n < sizeof buf) break;
    }
    if (close(out) != 0 && rc == 0) rc = fail_errno(job, "cannot store the PDF");
    if (rc == 0 && total == 0) {
        snprintf(job->why, sizeof job->why, "no PDF received (empty input)");
        rc = -1;
    }
    return rc;
}

/* The renderer's first complaint, reduced to printable ASCII: it can quote
 * the hostile PDF, and it ends up on the caller's terminal. */
static void renderer_complaint(const struct render_job *job, char *out, size_t size) {
    out[0] = 0;
    FILE *f = fopen(job->log_path, "re");
    if (f == NULL) return;
    char line[256];
    if (fgets(line, sizeof line, f) != NULL) {
        size_t j = 0;
        for (size_t i = 0; line[i] != 0 && line[i] != '\n' && j + 1 < size; i++)
            out[j++] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
        out[j] = 0;
    }
    fclose(f);
}

static int spawn_renderer(struct render_job *job, const char *renderer, unsigned dpi, uint32_t max_pages,
                          const int *close_fds, int close_count) {
    char dpi_text[16], last_text[16], prefix[PATH_MAX + 48];
    snprintf(dpi_text, sizeof dpi_text, "%u", dpi);
    /* One page past the limit, so "too many" is seen without rendering all. */
    snprintf(last_text, sizeof last_text, "%u", max_pages + 1);
    snprintf(prefix, sizeof prefix, "%s/" PAGE_PREFIX, job->pages_dir);
    /* Our paths start with '/', so none can be taken for an option. */
    char *const argv[] = {(char *)renderer, "-png", "-r", dpi_text, "-l", last_text, job->pdf_path, prefix, NULL};

    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return fail_errno(job, "cannot start the renderer");
    /* Its stdout must never reach ours: ours is the pixel stream. */
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 2, job->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; rc == 0 && i < close_count; i++)
        if (close_fds[i] > 2) rc = posix_spawn_file_actions_addclose(&fa, close_fds[i]);
    pid_t pid = -1;
    if (rc == 0) rc = posix_spawn(&pid, renderer, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        snprintf(job->why, sizeof job->why, "cannot start the renderer %s: %s", renderer, strerror(rc));
        return -1;
    }
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    if (r < 0) return fail_errno(job, "cannot wait for the renderer");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char complaint[160];
    renderer_complaint(job, complaint, sizeof complaint);
    if (WIFEXITED(status))
        snprintf(job->why, sizeof job->why, "the renderer could not render the PDF (exit status %d)%s%s",
                 WEXITSTATUS(status), complaint[0] ? ": " : "", complaint);
    else
        snprintf(job->why, sizeof job->why, "the renderer died (signal %d)", WTERMSIG(status));
    return -1;
}

/* "page-0012.png" -> 12; -1 for anything else. */
static long page_number(const char *name) {
    size_t plen = strlen(PAGE_PREFIX "-");
    if (strncmp(name, PAGE_PREFIX "-", plen) != 0) return -1;
    const char *d = name + plen;
    size_t digits = strspn(d, "0123456789");
    if (digits == 0 || digits > 6 || strcmp(d + digits, ".png") != 0) return -1;
    return strtol(d, NULL, 10);
}

/* The renderer names pages PREFIX-N.png (N zero-padded): exactly pages
 * 1..count must be there, nothing else. */
static int list_pages(struct render_job *job, uint32_t max_pages) {
    job->page_names = calloc((size_t)max_pages + 2, sizeof *job->page_names);
    if (job->page_names == NULL) return fail_errno(job, "cannot list the rendered pages");
    DIR *d = opendir(job->pages_dir);
    if (d == NULL) return fail_errno(job, "cannot list the rendered pages");
    uint32_t count = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        long n = page_number(e->d_name);
        if (n == (long)max_pages + 1) {
            snprintf(job->why, sizeof job->why, "the PDF has more than %u pages", max_pages);
            rc = -1;
        } else if (n < 1 || n > (long)max_pages || job->page_names[n][0] != 0 ||
                   strlen(e->d_name) >= RENDER_NAME_MAX) {
            snprintf(job->why, sizeof job->why, "the renderer left an unexpected file");
            rc = -1;
        } else {
            snprintf(job->page_names[n], RENDER_NAME_MAX, "%s", e->d_name);
            count++;
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0) rc = fail_errno(job, "cannot list the rendered pages");
    closedir(d);
    if (rc != 0) return -1;
    if (count == 0) {
        snprintf(job->why, sizeof job->why, "the PDF has no pages");
        return -1;
    }
    for (uint32_t n = 1; n <= count; n++)
        if (job->page_names[n][0] == 0) {
            snprintf(job->why, sizeof job->why, "the renderer skipped page %u", n);
            return -1;
        }
    job->pages = count;
    return 0;
}

int render_job_render(struct render_job *job, const char *renderer, unsigned dpi, uint32_t max_pages,
                      const int *close_fds, int close_count) {
    if (renderer[0] != '/') {
        snprintf(job->why, sizeof job->why, "config renderer=%.100s is not an absolute path", renderer);
        return -1;
    }
    if (access(renderer, X_OK) != 0) {
        snprintf(job->why, sizeof job->why, "the renderer %.100s is missing (install poppler-utils): %s", renderer,
                 strerror(errno));
        return -1;
    }
    if (spawn_renderer(job, renderer, dpi, max_pages, close_fds, close_count) != 0) return -1;
    return list_pages(job, max_pages);
}

int render_job_page_path(const struct render_job *job, uint32_t n, char *buf, size_t size) {
    if (n < 1 || n > job->pages) return -1;
    int len = snprintf(buf, size, "%s/%s", job->pages_dir, job->page_names[n]);
    return len < 0 || (size_t)len >= size ? -1 : 0;
}

void render_job_destroy(struct render_job *job) {
    if (job->dir[0] != 0) {
        DIR *d = opendir(job->pages_dir);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                    (void)unlinkat(dirfd(d), e->d_name, 0);
            closedir(d);
        }
        (void)rmdir(job->pages_dir);
        (void)unlink(job->pdf_path);
        (void)unlink(job->log_path);
        (void)rmdir(job->dir);
        job->dir[0] = 0;
    }
    free(job->page_names);
    job->page_names = NULL;
}
