/*
 * progress.c - ody-copy --progress: one line on stderr, rewritten in
 * place ("\r"), at most ten times a second so that a tree of tiny files
 * does not spend its time printing.
 */
#include "filecopy_internal.h"

#include <stdio.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void human(char *out, size_t size, uint64_t bytes) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(out, size, "%llu B", (unsigned long long)bytes);
    else snprintf(out, size, "%.1f %s", v, units[u]);
}

void fc_progress_update(struct fc_progress *p, int force) {
    if (!p->enabled) return;
    uint64_t t = now_ns();
    if (!force && p->shown && t - p->last_ns < 100000000ull) return;
    p->last_ns = t;
    p->shown = 1;
    char done[32], total[32], line[160];
    human(done, sizeof done, p->bytes_done);
    human(total, sizeof total, p->bytes_total);
    int pct = p->bytes_total > 0 && p->bytes_done < p->bytes_total ? (int)(p->bytes_done * 100 / p->bytes_total) : 100;
    int n = snprintf(line, sizeof line, "\r%s: %s of %s (%d%%), %llu of %llu files   ", p->who, done, total, pct,
                     (unsigned long long)p->files_done, (unsigned long long)p->files_total);
    if (n > 0) (void)write_all(p->fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void fc_progress_end(struct fc_progress *p) {
    if (!p->enabled || !p->shown) return;
    fc_progress_update(p, 1);
    (void)write_all(p->fd, "\n", 1);
}
