/*
 * odyssey-addon-run - runs one service or one client command of an add-on,
 * in its own process, through the same ABI odysseyd uses (odyssey_plugin.h).
 *
 * Why C: it runs inside every domain, whatever the domain's distribution,
 * with nothing but libc (and it must dlopen add-ons, which a static binary
 * cannot do reliably); it also keeps an add-on's bugs out of odysseyd.
 *
 * It lives in the add-ons view odysseyd builds (<state_dir>/addons, mounted
 * read-only in domains at /.odyssey/addons, see AddonView.swift):
 *
 *   odyssey-addon-run        this program
 *   index                    "service SIDE NAME ID LIB FACTORY" and
 *                            "command NAME ID LIB FACTORY" lines
 *   lib/LIB                  the add-on libraries
 *   conf/FACTORY             the [addon.FACTORY] config, key=value lines
 *   rpc/SERVICE, admin-rpc/SERVICE, bin/COMMAND  -> ../odyssey-addon-run
 *
 * Like busybox, it learns what to run from the name it was started as:
 *   .../rpc/SERVICE [ARG]        a domain-side service (started by the agent)
 *   .../admin-rpc/SERVICE [ARG]  an admin-side service (started by odysseyd)
 *   COMMAND ARGS...              a client command (bin/ is on the PATH)
 * or explicitly: odyssey-addon-run --service SERVICE[+ARG] | --command NAME ARGS...
 *
 * A service's caller is QREXEC_REMOTE_DOMAIN, which the agent (or odysseyd)
 * sets from the channel the call came in on; the add-on never learns it
 * from the data.
 */
#define _GNU_SOURCE
#include "runner.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: odyssey-addon-run --service SERVICE[+ARG]\n"
    "       odyssey-addon-run --command NAME [ARGS...]\n"
    "       odyssey-addon-run --list\n"
    "Runs one service or client command of an installed Odyssey add-on. It is\n"
    "normally started through the links in its directory (rpc/, admin-rpc/,\n"
    "bin/), never by hand; --list prints what the add-ons here provide.\n";

static int list_index(const struct runner_env *env) {
    FILE *f = fopen(env->index_path, "re");
    if (f == NULL) {
        fprintf(stderr, "odyssey-addon-run: %s: %s\n", env->index_path, strerror(errno));
        return 1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) fputs(line, stdout);
    fclose(f);
    return 0;
}

/* The directory of this executable: the add-ons view. */
static int find_view(struct runner_env *env) {
    const char *override = getenv("ODYSSEY_ADDONS_DIR");
    char exe[PATH_MAX];
    exe[0] = 0;
    if (override != NULL && override[0] == '/') {
        snprintf(env->view, sizeof env->view, "%s", override);
    } else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            fprintf(stderr, "odyssey-addon-run: cannot read /proc/self/exe: %s\n", strerror(errno));
            return -1;
        }
        exe[n] = 0;
        snprintf(env->view, sizeof env->view, "%s", dirname(exe));
    }
    snprintf(env->index_path, sizeof env->index_path, "%s/index", env->view);
    return 0;
}

int main(int argc, char **argv) {
    /* A closed pipe is an EPIPE for the add-on to report, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    struct runner_env env;
    memset(&env, 0, sizeof env);
    if (argc < 1 || find_view(&env) != 0) return 125;

    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    char *name = basename(self);
    char parent_buf[PATH_MAX];
    snprintf(parent_buf, sizeof parent_buf, "%s", argv[0]);
    const char *parent = strchr(argv[0], '/') ? basename(dirname(parent_buf)) : "";

    if (strcmp(name, "odyssey-addon-run") == 0) {
        if (argc >= 2 && strcmp(argv[1], "--list") == 0) return list_index(&env);
        if (argc == 3 && strcmp(argv[1], "--service") == 0) return run_service_named(&env, argv[2], NULL, "");
        if (argc >= 3 && strcmp(argv[1], "--command") == 0) return run_command_named(&env, argc - 2, argv + 2);
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(usage, stdout);
            return 0;
        }
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(parent, "rpc") == 0) return run_service_named(&env, name, argc > 1 ? argv[1] : NULL, "domain");
    if (strcmp(parent, "admin-rpc") == 0) return run_service_named(&env, name, argc > 1 ? argv[1] : NULL, "admin");
    return run_command_named(&env, argc, argv);
}
