/*
 * remove_tree.c - ody-move's last step, run only after the receiver
 * reported success and the CRCs matched: the originals go, depth first,
 * never following a link (a link inside the tree is removed, not what it
 * points to).
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *remove_who;
static int remove_err_fd;

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int rc = type == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0) {
        char shown[1024];
        fc_printable(shown, sizeof shown, path, strlen(path));
        say(remove_err_fd, "%s: copied, but cannot remove the original %s: %s", remove_who, shown, strerror(errno));
        return -1;
    }
    return 0;
}

int fc_remove_tree(const char *who, const char *path, int err_fd) {
    remove_who = who;
    remove_err_fd = err_fd;
    return nftw(path, remove_one, 64, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
