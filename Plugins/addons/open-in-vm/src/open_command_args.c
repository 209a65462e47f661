/*
 * open_command_args.c - the command line of ody-open-in-vm / ody-open-in-dvm:
 * the help text, and the arguments checked before anything is sent.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <stdio.h>
#include <string.h>

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

int open_command_parse(const ody_command_call *call, struct open_request *r) {
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
