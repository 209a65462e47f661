/*
 * copy_command.c - ody-copy and ody-move (Qubes qvm-copy / qvm-move): the
 * options, the qrexec call, and the verdict.
 *
 * Success needs all three: the receiver answered error_code 0, its CRC of
 * what it read equals ours of what we sent, and the service exited 0.
 * ody-move removes the originals only then.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *help_text =
    "usage: %1$s [--to TARGET] [--progress] FILE...\n"
    "\n"
    "%2$s\n"
    "The files land in ~/QubesIncoming/<THIS DOMAIN>/ of the target domain;\n"
    "directories are sent with everything inside them (symbolic links inside\n"
    "travel as links, a link given as FILE is %3$s).\n"
    "\n"
    "  --to TARGET   the domain to copy to; without it the policy decides\n"
    "                (by default it asks you which domain)\n"
    "  --progress    show bytes and files done on stderr\n"
    "  --help        this text\n"
    "\n"
    "Nothing at the target is ever overwritten: a name that already exists\n"
    "there fails the copy (remove it or rename yours first). Names with\n"
    "unusual characters are sent as qubes.Filecopy+allow-all-names, which\n"
    "the policy may treat separately. Exit status: 0 when everything\n"
    "arrived intact, otherwise 1 (2 for a usage error), with one line saying why.\n"
    "\n"
    "Example: %1$s --to personal report.pdf photos/\n";

struct options {
    const char *who;
    int move;
    const char *target;
    int progress;
    int first_file, nfiles;
};

static int usage_error(const char *who, int err_fd, const char *fmt, const char *arg) {
    char line[512];
    snprintf(line, sizeof line, fmt, arg);
    say(err_fd, "%s: %s (see %s --help)", who, line, who);
    return 2;
}

/* 0 parsed, 1 help shown, 2 usage error (shown). */
static int parse(const ody_command_call *call, struct options *o) {
    const char *const *argv = call->argv;
    o->target = "@default";
    int i = 1;
    for (; i < call->argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0) break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dprintf(call->stdout_fd, help_text, o->who,
                    o->move ? "Moves files to another domain: they are removed here once the other domain\n"
                              "has them, checked (CRC-32) and synced to its disk."
                            : "Copies files to another domain.",
                    o->move ? "refused" : "followed");
            return 1;
        }
        if (strcmp(a, "--progress") == 0) o->progress = 1;
        else if (strcmp(a, "--to") == 0) {
            if (i + 1 >= call->argc) return usage_error(o->who, call->stderr_fd, "%s needs a domain name", a);
            o->target = argv[++i];
        } else if (strncmp(a, "--to=", 5) == 0) o->target = a + 5;
        else return usage_error(o->who, call->stderr_fd, "unknown option %s", a);
    }
    if (o->target[0] == 0) return usage_error(o->who, call->stderr_fd, "%s", "--to needs a domain name");
    o->first_file = i;
    o->nfiles = call->argc - i;
    if (o->nfiles <= 0) return usage_error(o->who, call->stderr_fd, "%s", "no FILE to send");
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Two arguments landing under the same name would collide at the target:
 * said before anything is sent (sorted, so `ody-copy *` stays fast). */
static int check_top_names(const struct options *o, const char *const *files, int err_fd) {
    char **names = calloc((size_t)o->nfiles, sizeof *names);
    char name[FC_MAX_NAME];
    int rc = names != NULL ? 0 : -1;
    if (names == NULL) say(err_fd, "%s: out of memory", o->who);
    for (int i = 0; rc == 0 && i < o->nfiles; i++) {
        if (fc_top_name(o->who, files[i], name, sizeof name, err_fd) != 0) rc = -1;
        else if ((names[i] = strdup(name)) == NULL) {
            say(err_fd, "%s: out of memory", o->who);
            rc = -1;
        }
    }
    if (rc == 0) {
        qsort(names, (size_t)o->nfiles, sizeof *names, compare_names);
        for (int i = 1; i < o->nfiles && rc == 0; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                char shown[512];
                fc_printable(shown, sizeof shown, names[i], strlen(names[i]));
                say(err_fd, "%s: two arguments would both land as \"%s\"; send them separately", o->who, shown);
                rc = -1;
            }
    }
    for (int i = 0; names != NULL && i < o->nfiles; i++) free(names[i]);
    free(names);
    return rc;
}

struct verdict {
    int answered;
    struct fc_result_header r;
    char name[FC_MAX_NAME];
};

static void read_verdict(int fd, struct verdict *v) {
    memset(v, 0, sizeof v->r);
    v->answered = read_exact(fd, &v->r, sizeof v->r) == 0;
    v->name[0] = 0;
    if (!v->answered || v->r.error_code == 0) return;
    uint32_t len = 0;
    if (read_exact(fd, &len, sizeof len) != 0 || len >= sizeof v->name) return;   /* the name is optional */
    char untrusted_name[FC_MAX_NAME];
    if (read_exact(fd, untrusted_name, len) != 0) return;
    fc_printable(v->name, 512, untrusted_name, len);
}

int32_t fc_copy_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status) {
    struct options o;
    memset(&o, 0, sizeof o);
    const char *slash = strrchr(call->argv[0], '/');
    o.who = slash != NULL ? slash + 1 : call->argv[0];
    o.move = strcmp(o.who, "ody-move") == 0;
    int err = call->stderr_fd;
    int pr = parse(call, &o);
    if (pr != 0) {
        *exit_status = pr == 1 ? 0 : 2;
        return ODY_OK;
    }
    const char *const *files = call->argv + o.first_file;
    *exit_status = 1;
    struct fc_pack_totals totals;
    if (check_top_names(&o, files, err) != 0 || fc_pack_scan(o.who, o.nfiles, files, !o.move, o.progress, &totals, err) != 0)
        return ODY_OK;

    char service[64];
    snprintf(service, sizeof service, "%s%s", FC_SERVICE, totals.needs_all_names ? "+" FC_ALL_NAMES_ARG : "");
    int fd = -1;
    uint64_t call_id = 0;
    if (addon_call(a, o.target, service, &fd, &call_id, err) != 0) return ODY_OK;

    struct fc_writer w;
    struct fc_progress p = {.enabled = o.progress, .fd = err, .who = o.who,
                            .bytes_total = totals.bytes, .files_total = totals.files};
    int sent = -1;
    if (fc_writer_init(&w, fd) != 0) say(err, "%s: out of memory", o.who);
    else sent = fc_pack_send(o.who, o.nfiles, files, !o.move, &w, &p, err);
    fc_progress_end(&p);
    (void)shutdown(fd, SHUT_WR);   /* the receiver's EOF, whatever happened */
    static struct verdict v;
    read_verdict(fd, &v);
    close(fd);
    int status = addon_call_finish(a, call_id);
    char target_shown[128];
    fc_printable(target_shown, sizeof target_shown, o.target, strlen(o.target));

    if (status == 126) say(err, "%s: the policy refused the copy to %s", o.who, target_shown);
    else if (status == 127) say(err, "%s: %s has no %s service", o.who, target_shown, FC_SERVICE);
    else if (sent != 0 && !w.receiver_spoke) {}   /* our own reason is already on stderr */
    else if (v.answered && v.r.error_code != 0 && v.name[0] != 0)
        say(err, "%s: %s refused the copy at \"%s\": %s", o.who, target_shown, v.name, strerror((int)v.r.error_code));
    else if (v.answered && v.r.error_code != 0)
        say(err, "%s: %s refused the copy: %s", o.who, target_shown, strerror((int)v.r.error_code));
    else if (!v.answered) say(err, "%s: %s did not confirm the copy (the service exited with %d)", o.who, target_shown, status);
    else if (sent != 0)   /* "done" before the end of the stream is never success (ody-move would delete) */
        say(err, "%s: %s answered before the copy was complete", o.who, target_shown);
    else if (v.r.crc32 != (uint64_t)w.crc)
        say(err, "%s: the copy to %s arrived corrupted (CRC-32 %08llx received, %08x sent)", o.who, target_shown,
            (unsigned long long)v.r.crc32, w.crc);
    else if (status != 0) say(err, "%s: the service in %s failed (exit status %d)", o.who, target_shown, status);
    else {
        *exit_status = 0;
        if (o.move)
            for (int i = 0; i < o.nfiles; i++)
                if (fc_remove_tree(o.who, files[i], err) != 0) *exit_status = 1;
    }
    fc_writer_free(&w);
    return ODY_OK;
}
