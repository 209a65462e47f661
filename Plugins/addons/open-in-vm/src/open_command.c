/*
 * open_command.c - ody-open-in-vm TARGET FILE and ody-open-in-dvm FILE.
 *
 * Sends FILE's base name and data to qubes.OpenInVM in TARGET (@dispvm for
 * ody-open-in-dvm), then waits: whatever comes back is the edited file. It
 * goes to a temporary file beside FILE and is compared with FILE as it
 * arrives; FILE is replaced (rename, so it is never half-written) only if
 * the service succeeded and the content differs. What comes back is untrusted
 * data, but it is only ever file content the user asked to edit there.
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

static const char help_text[] =
    "usage: ody-open-in-vm [--view-only] TARGET FILE\n"
    "       ody-open-in-dvm [--view-only] FILE\n"
    "\n"
    "Open FILE with the default program of another domain (ody-open-in-vm) or\n"
    "of a fresh disposable that is destroyed afterwards (ody-open-in-dvm, the\n"
    "same as TARGET @dispvm). Use it for files you do not trust: whatever\n"
    "they exploit, they exploit there. A copy of FILE is sent; when the program\n"
    "there exits, the edited copy comes back and replaces FILE (keeping its\n"
    "mode) only if its content changed.\n"
    "\n"
    "  --view-only  the copy there is read-only and nothing comes back\n"
    "  -h, --help   this help\n"
    "\n"
    "The other domain learns FILE's content and base name (no directories; bytes\n"
    "outside [A-Za-z0-9._+@-] become '_'), nothing else. The qrexec policy\n"
    "decides (service qubes.OpenInVM): by default a disposable is allowed and\n"
    "any other domain asks. The program there comes from its config\n"
    "([addon.open-in-vm] viewer, default xdg-open); this command waits for it.\n"
    "\n"
    "Limits: an edit that empties FILE cannot come back (no data means\n"
    "\"unchanged\"); a file whose name starts with \"view-only-\" is sent as\n"
    "\"view_only-...\", since that prefix is how read-only is asked for.\n"
    "\n"
    "Exit status: 0 done (FILE replaced or unchanged); the service's status if\n"
    "it failed (126 refused by policy, 127 no such service there, 125 the call\n"
    "failed); 1 a local error; 2 bad usage.\n"
    "\n"
    "Examples:\n"
    "  ody-open-in-dvm invoice.pdf            read an untrusted PDF in a disposable\n"
    "  ody-open-in-dvm --view-only notes.odt  look only; nothing comes back\n"
    "  ody-open-in-vm work draft.txt          edit in work; changes come back here\n";

struct open_request {
    const char *command;
    const char *target;
    const char *file;
    int view_only;
    int out, err;
};

static void usage(const struct open_request *r, const char *problem) {
    say(r->err, "%s: %s", r->command, problem);
    say(r->err, "usage: %s", strcmp(r->command, "ody-open-in-dvm") == 0 ? "ody-open-in-dvm [--view-only] FILE"
                                                                         : "ody-open-in-vm [--view-only] TARGET FILE");
    say(r->err, "(%s --help explains)", r->command);
}

/* A domain name or keyword as ody-call takes it; anything else is a typo,
 * and better reported here than turned into '_' on its way. */
static int valid_target(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '@' || c == ':'))
            return 0;
    }
    return 1;
}

/* -1: go on; otherwise the exit status. */
static int parse_args(const ody_command_call *call, struct open_request *r) {
    const char *positional[3];
    int count = 0, options_done = 0;
    for (int i = 1; i < call->argc; i++) {
        const char *s = call->argv[i];
        if (!options_done && (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)) {
            (void)write_all(r->out, help_text, sizeof help_text - 1);
            return 0;
        }
        if (!options_done && strcmp(s, "--view-only") == 0) {
            r->view_only = 1;
        } else if (!options_done && strcmp(s, "--") == 0) {
            options_done = 1;
        } else if (!options_done && s[0] == '-' && s[1] != 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown option %.60s", s);
            usage(r, msg);
            return 2;
        } else if (count < 3) {
            positional[count++] = s;
        } else {
            count++;
        }
    }
    int wanted = r->target != NULL ? 1 : 2;
    if (count != wanted) {
        usage(r, count < wanted ? "missing arguments" : "too many arguments");
        return 2;
    }
    if (wanted == 2) r->target = positional[0];
    r->file = positional[wanted - 1];
    if (!valid_target(r->target)) {
        usage(r, "TARGET is not a domain name (1-63 of A-Z a-z 0-9 _ . - @ :)");
        return 2;
    }
    return -1;
}

/* The data coming back: into `tmp` (unless view-only), compared on the way
 * with the original `src`. */
struct reply {
    uint64_t bytes;
    int differs;
    int failed;      /* 0, or errno of a local read/write failure */
};

static void receive_reply(int fd, int src, int tmp, struct reply *rep) {
    static char buf[64 * 1024], orig[64 * 1024];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rep->failed = errno;
            return;
        }
        if (n == 0) break;
        if (tmp >= 0) {
            if (write_all(tmp, buf, (size_t)n) != 0) {
                rep->failed = errno;
                return;
            }
            if (!rep->differs) {
                ssize_t m = pread(src, orig, (size_t)n, (off_t)rep->bytes);
                /* A short pread is a difference too (the reply is longer). */
                if (m != n || memcmp(orig, buf, (size_t)n) != 0) rep->differs = 1;
            }
        }
        rep->bytes += (uint64_t)n;
    }
    struct stat st;
    if (tmp >= 0 && !rep->differs && fstat(src, &st) == 0 && (uint64_t)st.st_size != rep->bytes) rep->differs = 1;
}

/* Puts the edited copy in place of FILE, unless FILE changed meanwhile. */
static int replace_original(const struct open_request *r, const char *real, const struct stat *before, int tmp,
                            const char *tmp_path) {
    struct stat now;
    if (stat(real, &now) != 0 || now.st_ino != before->st_ino || now.st_dev != before->st_dev ||
        now.st_size != before->st_size || now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != before->st_mtim.tv_nsec) {
        say(r->err, "%s: %s changed here while it was open in %s; the edited copy is kept as %s", r->command,
            r->file, r->target, tmp_path);
        close(tmp);
        return 1;
    }
    if (fchmod(tmp, before->st_mode & 07777) != 0 ||
        (geteuid() == 0 && fchown(tmp, before->st_uid, before->st_gid) != 0) || fsync(tmp) != 0) {
        say(r->err, "%s: cannot prepare the edited copy of %s: %s", r->command, r->file, strerror(errno));
        close(tmp);
        unlink(tmp_path);
        return 1;
    }
    if (close(tmp) != 0 || rename(tmp_path, real) != 0) {
        say(r->err, "%s: cannot replace %s: %s", r->command, r->file, strerror(errno));
        unlink(tmp_path);
        return 1;
    }
    say(r->out, "%s: updated with the copy edited in %s", r->file, r->target);
    return 0;
}

static void explain_status(const struct open_request *r, int status) {
    if (status == 126)
        say(r->err, "%s: opening %s in %s was refused by policy (status 126)", r->command, r->file, r->target);
    else if (status == 127)
        say(r->err, "%s: %s has no " OPEN_SERVICE " service (status 127)", r->command, r->target);
    else
        say(r->err, "%s: " OPEN_SERVICE " in %s failed (status %d%s); %s is unchanged", r->command, r->target, status,
            status == 125 ? ", the qrexec call itself" : "", r->file);
}

static int open_file(ody_addon *a, const struct open_request *r) {
    char real[PATH_MAX];
    if (realpath(r->file, real) == NULL) {
        say(r->err, "%s: %s: %s", r->command, r->file, strerror(errno));
        return 1;
    }
    int src = open(real, O_RDONLY | O_CLOEXEC);
    struct stat before;
    if (src < 0 || fstat(src, &before) != 0) {
        say(r->err, "%s: %s: %s", r->command, r->file, strerror(errno));
        if (src >= 0) close(src);
        return 1;
    }
    if (!S_ISREG(before.st_mode)) {
        say(r->err, "%s: %s is not a regular file", r->command, r->file);
        close(src);
        return 1;
    }
    char *slash = strrchr(real, '/');
    char base[OPEN_NAME_BLOCK], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash == real ? 1 : (int)(slash - real), real);
    if (strlen(slash + 1) > name_block_max_base(r->view_only)) {
        say(r->err, "%s: the name of %s is too long to send (at most %zu bytes)", r->command, r->file,
            name_block_max_base(r->view_only));
        close(src);
        return 1;
    }
    snprintf(base, sizeof base, "%s", slash + 1);
    /* The view-only request travels in the name: keep an editable file's own
     * name from asking for it. */
    if (!r->view_only && strncmp(base, OPEN_VIEW_ONLY_PREFIX, strlen(OPEN_VIEW_ONLY_PREFIX)) == 0) base[4] = '_';
    unsigned char block[OPEN_NAME_BLOCK];
    (void)name_block_make(block, base, r->view_only);

    /* The edited copy lands beside FILE so the final rename stays on one
     * filesystem; made before the call, so a read-only directory fails now
     * rather than after the user's edits. */
    char tmp_path[PATH_MAX + 32];
    int tmp = -1;
    if (!r->view_only) {
        snprintf(tmp_path, sizeof tmp_path, "%s/.ody-open-XXXXXX", strcmp(dir, "/") == 0 ? "" : dir);
        tmp = mkostemp(tmp_path, O_CLOEXEC);
        if (tmp < 0) {
            say(r->err, "%s: cannot write in %s (%s), so an edited copy could not come back; --view-only opens it read-only",
                r->command, dir, strerror(errno));
            close(src);
            return 1;
        }
    }
    int fd = -1;
    uint64_t call_id = 0;
    if (addon_call(a, r->target, OPEN_SERVICE, &fd, &call_id, r->err) != 0) {
        if (tmp >= 0) {
            close(tmp);
            unlink(tmp_path);
        }
        close(src);
        return 1;
    }
    uint64_t sent = 0;
    int failed_side = -1;
    if (write_all(fd, block, sizeof block) != 0) failed_side = 1;
    else if (stream_copy(src, fd, -1, &sent, &failed_side) == 0) failed_side = -1;
    int send_errno = errno;
    (void)shutdown(fd, SHUT_WR);
    struct reply rep = {0, 0, 0};
    receive_reply(fd, src, tmp, &rep);
    close(fd);
    int status = addon_call_finish(a, call_id);

    int result;
    if (status != 0) {
        explain_status(r, status);
        result = status;
    } else if (failed_side >= 0) {
        say(r->err, "%s: %s %s: %s", r->command, failed_side == 0 ? "reading" : "sending", r->file, strerror(send_errno));
        result = 1;
    } else if (rep.failed != 0) {
        say(r->err, "%s: receiving the edited copy of %s failed: %s", r->command, r->file, strerror(rep.failed));
        result = 1;
    } else if (r->view_only) {
        if (rep.bytes > 0)
            say(r->err, "%s: ignored %llu bytes sent back for a view-only copy", r->command, (unsigned long long)rep.bytes);
        result = 0;
    } else if (rep.bytes > 0 && rep.differs) {
        close(src);
        return replace_original(r, real, &before, tmp, tmp_path);
    } else {
        result = 0;
    }
    if (tmp >= 0) {
        close(tmp);
        unlink(tmp_path);
    }
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
    int rc = parse_args(call, &r);
    if (rc >= 0) return rc;
    return open_file(a, &r);
}
