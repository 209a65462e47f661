/*
 * open_command.c - ody-open-in-vm TARGET FILE and ody-open-in-dvm FILE.
 *
 * Sends FILE's base name and data to qubes.OpenInVM in TARGET (@dispvm for
 * ody-open-in-dvm), then waits: whatever comes back is the edited file
 * (edited_copy.c). FILE is replaced only if the service succeeded and the
 * content differs; a view-only copy never comes back.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void explain_status(const struct open_request *r, int status) {
    if (status == 126)
        say(r->err, "%s: opening %s in %s was refused by policy (status 126)", r->command, r->file, r->target);
    else if (status == 127)
        say(r->err, "%s: %s has no " OPEN_SERVICE " service (status 127)", r->command, r->target);
    else
        say(r->err, "%s: " OPEN_SERVICE " in %s failed (status %d%s); %s is unchanged", r->command, r->target, status,
            status == 125 ? ", the qrexec call itself" : "", r->file);
}

/* FILE resolved (a symlink is edited where it points) and opened: 0, or the
 * exit status after a message. */
static int open_original(const struct open_request *r, char real[PATH_MAX], int *fd, struct stat *st) {
    if (realpath(r->file, real) == NULL) {
        say(r->err, "%s: %s: %s", r->command, r->file, strerror(errno));
        return 1;
    }
    *fd = open(real, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 || fstat(*fd, st) != 0) {
        say(r->err, "%s: %s: %s", r->command, r->file, strerror(errno));
        if (*fd >= 0) close(*fd);
        return 1;
    }
    if (!S_ISREG(st->st_mode)) {
        say(r->err, "%s: %s is not a regular file", r->command, r->file);
        close(*fd);
        return 1;
    }
    return 0;
}

/* The name block for `base`; 0 or the exit status after a message. */
static int make_name_block(const struct open_request *r, const char *base, unsigned char block[OPEN_NAME_BLOCK]) {
    size_t max = name_block_max_base(r->view_only);
    if (strlen(base) > max) {
        say(r->err, "%s: the name of %s is too long to send (at most %zu bytes)", r->command, r->file, max);
        return 1;
    }
    char name[OPEN_NAME_BLOCK];
    snprintf(name, sizeof name, "%s", base);
    /* Read-only is asked for in the name: keep an editable file's own name
     * from asking for it. */
    if (!r->view_only && strncmp(name, OPEN_VIEW_ONLY_PREFIX, strlen(OPEN_VIEW_ONLY_PREFIX)) == 0) name[4] = '_';
    return name_block_make(block, name, r->view_only) == 0 ? 0 : 1;
}

/* Name block, then the data, then EOF. 0, or -1 with *what and errno. */
static int send_file(int channel, const unsigned char block[OPEN_NAME_BLOCK], int src, const char **what) {
    uint64_t sent = 0;
    int failed_side = 1;
    int rc = write_all(channel, block, OPEN_NAME_BLOCK);
    if (rc == 0) rc = stream_copy(src, channel, -1, 0, &sent, &failed_side);
    int saved = errno;
    /* EOF even after a failure: the service then finishes (or fails) and
     * reports, instead of waiting for more. */
    (void)shutdown(channel, SHUT_WR);
    errno = saved;
    if (rc != 0) *what = failed_side == 0 ? "reading" : "sending";
    return rc;
}

static int open_file(ody_addon *a, const struct open_request *r) {
    char real[PATH_MAX];
    int src = -1;
    struct stat before;
    int rc = open_original(r, real, &src, &before);
    if (rc != 0) return rc;
    char *slash = strrchr(real, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash == real ? 1 : (int)(slash - real), real);
    unsigned char block[OPEN_NAME_BLOCK];
    if (make_name_block(r, slash + 1, block) != 0) {
        close(src);
        return 1;
    }
    /* The edited copy will need the directory: better said now than after
     * the user's edits. */
    if (!r->view_only && access(dir, W_OK | X_OK) != 0) {
        say(r->err, "%s: cannot write in %s (%s), so an edited copy could not come back; --view-only opens it read-only",
            r->command, dir, strerror(errno));
        close(src);
        return 1;
    }
    int channel = -1;
    uint64_t call_id = 0;
    if (addon_call(a, r->target, OPEN_SERVICE, &channel, &call_id, r->err) != 0) {
        close(src);
        return 1;
    }
    const char *send_failed = NULL;
    int send_errno = send_file(channel, block, src, &send_failed) == 0 ? 0 : errno;
    struct edited_copy copy;
    edited_copy_init(&copy, r->view_only ? NULL : dir, src, edited_copy_limit(a, (uint64_t)before.st_size));
    edited_copy_receive(&copy, channel);
    close(channel);
    int status = addon_call_finish(a, call_id);

    int result = 0;
    if (copy.too_big) {
        /* Checked first: having stopped reading, the service's status is
         * most likely the broken pipe this caused. */
        say(r->err, "%s: %s sent back more than %llu bytes (config [addon.open-in-vm] return_max_bytes, "
            "return_max_factor); stopped reading, %s is unchanged", r->command, r->target,
            (unsigned long long)copy.limit, r->file);
        result = 1;
    } else if (status != 0) {
        explain_status(r, status);
        result = status;
    } else if (send_failed != NULL) {
        say(r->err, "%s: %s %s failed: %s", r->command, send_failed, r->file, strerror(send_errno));
        result = 1;
    } else if (copy.error != 0) {
        say(r->err, "%s: %s of %s failed: %s; %s is unchanged", r->command, copy.failed, r->file, strerror(copy.error),
            r->file);
        result = 1;
    } else if (r->view_only && copy.bytes > 0) {
        say(r->err, "%s: ignored %llu bytes sent back for a view-only copy", r->command, (unsigned long long)copy.bytes);
    } else if (copy.fd >= 0 && copy.differs) {
        result = edited_copy_install(&copy, r, real, &before);
    }
    edited_copy_discard(&copy);
    close(src);
    return result;
}

int open_command(ody_addon *a, const ody_command_call *call) {
    struct open_request r = {.command = call->argv[0], .out = call->stdout_fd, .err = call->stderr_fd};
    if (strcmp(r.command, "ody-open-in-dvm") == 0) {
        r.target = "@dispvm";
    } else if (strcmp(r.command, "ody-open-in-vm") != 0) {
        say(r.err, "open-in-vm: unknown command %s (ody-open-in-vm and ody-open-in-dvm are provided)", r.command);
        return 2;
    }
    int rc = open_command_parse(call, &r);
    if (rc >= 0) return rc;
    return open_file(a, &r);
}
