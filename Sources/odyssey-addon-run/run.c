/* run.c - one service call or one client command, start to exit status. */
#define _GNU_SOURCE
#include "runner.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A caller is a domain name as the host writes them: a letter, then
 * [A-Za-z0-9_.-], under ODY_NAME_MAX bytes ("dom0" for the admin domain).
 * Anything else ('.', '..', a keyword) means the environment is not the
 * agent's, and the call is refused rather than guessed at. */
static int valid_domain(const char *s) {
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= ODY_NAME_MAX) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static void set_fixed(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src != NULL ? src : ""); }

static int finish(struct loaded_addon *a, int32_t rc, int32_t status, ody_error *err, const char *what) {
    addon_unload(a);
    if (rc == ODY_OK) return status;
    fprintf(stderr, "%s: %s (%s)\n", what, err->message[0] ? err->message : "failed", ody_status_name(rc));
    return rc == ODY_E_UNSUPPORTED ? 127 : 125;
}

int run_service_named(const struct runner_env *env, const char *name, const char *arg, const char *side) {
    char service[256];
    set_fixed(service, sizeof service, name);
    char *plus = strchr(service, '+');
    const char *argument = arg;
    if (plus != NULL) {
        *plus = 0;
        argument = plus + 1;
    }
    if (argument == NULL) argument = getenv("QREXEC_SERVICE_ARGUMENT");
    const char *untrusted_source = getenv("QREXEC_REMOTE_DOMAIN");
    if (!valid_domain(untrusted_source)) {
        fprintf(stderr, "odyssey-addon-run: %s: no valid QREXEC_REMOTE_DOMAIN: services are started by the agent or odysseyd\n", service);
        return 125;
    }
    const char *source = untrusted_source;   /* validated above; set by the agent/odysseyd from the channel */
    struct addon_entry e;
    if (index_find(env, "service", service, &e) != 0) return 127;
    if (side[0] != 0 && strcmp(side, e.side) != 0) {
        fprintf(stderr, "odyssey-addon-run: %s is a %s-side service, not run on the %s side\n", service, e.side, side);
        return 127;
    }
    struct loaded_addon a;
    memset(&a, 0, sizeof a);
    if (addon_load(env, &e, &a) != 0) return 125;
    if (a.ops->run_service == NULL) {
        addon_unload(&a);
        fprintf(stderr, "odyssey-addon-run: add-on %s runs no services (unsupported)\n", e.id);
        return 127;
    }
    ody_service_call call;
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    set_fixed(call.service, sizeof call.service, service);
    snprintf(call.argument, sizeof call.argument, "+%s", argument != NULL ? argument : "");
    set_fixed(call.source, sizeof call.source, source);
    set_fixed(call.target, sizeof call.target, getenv("QREXEC_REQUESTED_TARGET"));
    call.stdin_fd = 0;
    call.stdout_fd = 1;
    call.stderr_fd = 2;
    ody_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    int32_t status = 0;
    int32_t rc = a.ops->run_service(a.instance, &call, &status, 0, &err);
    return finish(&a, rc, status, &err, service);
}

int run_command_named(const struct runner_env *env, int argc, char **argv) {
    char self[PATH_MAX];
    set_fixed(self, sizeof self, argv[0]);
    const char *name = basename(self);
    struct addon_entry e;
    if (index_find(env, "command", name, &e) != 0) return 127;
    struct loaded_addon a;
    memset(&a, 0, sizeof a);
    if (addon_load(env, &e, &a) != 0) return 125;
    if (!ODY_HAS_MEMBER(a.ops, ody_addon_ops, run_command) || a.ops->run_command == NULL) {
        addon_unload(&a);
        fprintf(stderr, "odyssey-addon-run: add-on %s has no client commands (unsupported)\n", e.id);
        return 127;
    }
    argv[0] = (char *)name;
    ody_command_call call = {
        .struct_size = sizeof call, .flags = 0, .argc = argc, .stdin_fd = 0,
        .argv = (const char *const *)argv, .stdout_fd = 1, .stderr_fd = 2,
    };
    ody_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    int32_t status = 0;
    int32_t rc = a.ops->run_command(a.instance, &call, &status, 0, &err);
    return finish(&a, rc, status, &err, name);
}
