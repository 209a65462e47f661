/*
 * incoming_usage.c - what ~/QubesIncoming already holds, from every source,
 * counted at the start of each copy: the per-receiver quota
 * (incoming_quota_bytes, incoming_quota_files) is what is left of it. Without
 * this, each copy had its own quota and a domain could fill the receiver's
 * disk with many copies (issue 11, finding 16).
 *
 * The tree is partly written by other domains: walked with fts(3), which
 * keeps its stack on the heap (a deep tree cannot overflow the thread's
 * stack) and changes directory one level at a time (no path grows past
 * PATH_MAX); never following a link (FTS_PHYSICAL), never leaving the file
 * system (FTS_XDEV). The walk stops as soon as the files limit is passed:
 * the answer is then "full" and nothing more needs counting.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fc_incoming_usage(const char *dir, uint64_t files_limit, uint64_t *bytes, uint64_t *files, char *why,
                      size_t why_size) {
    *bytes = 0;
    *files = 0;
    /* fts changes the working directory while it walks, and puts it back in
     * fts_close; kept here too, in case it cannot. */
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *const roots[] = {(char *)dir, NULL};
    FTS *walk = fts_open(roots, FTS_PHYSICAL | FTS_XDEV, NULL);
    if (walk == NULL) {
        snprintf(why, why_size, "cannot walk %s (%s)", dir, strerror(errno));
        if (cwd >= 0) close(cwd);
        return -1;
    }
    int rc = 0;
    FTSENT *e;
    while ((e = fts_read(walk)) != NULL) {
        if (e->fts_level == 0) continue;   /* QubesIncoming itself */
        switch (e->fts_info) {
        case FTS_DP: continue;             /* a directory again, after its contents */
        case FTS_F: *bytes += (uint64_t)e->fts_statp->st_size; break;
        case FTS_SL:
        case FTS_SLNONE: *bytes += (uint64_t)e->fts_statp->st_size; break;   /* the target's length */
        default: break;                    /* directories; unreadable ones count as one entry */
        }
        if (++*files > files_limit) break;
    }
    if (e == NULL && errno != 0) {
        snprintf(why, why_size, "cannot walk %s (%s)", dir, strerror(errno));
        rc = -1;
    }
    fts_close(walk);
    if (cwd >= 0) {
        if (fchdir(cwd) != 0 && rc == 0) {
            snprintf(why, why_size, "cannot return to the working directory (%s)", strerror(errno));
            rc = -1;
        }
        close(cwd);
    }
    return rc;
}
