/* host_services.c - the host services an add-on gets in odyssey-addon-run:
 * log lines on stderr, its config from the view, and qrexec calls made
 * through ody-call (the domain's qrexec client). */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct runner_ctx {
    char id[128];
    char factory[64];
    char conf_path[PATH_MAX + 80];
};
static struct runner_ctx the_ctx;   /* one add-on per process */

void *runner_host_ctx(const struct runner_env *env, const char *id, const char *factory) {
    snprintf(the_ctx.id, sizeof the_ctx.id, "%s", id);
    snprintf(the_ctx.factory, sizeof the_ctx.factory, "%s", factory);
    snprintf(the_ctx.conf_path, sizeof the_ctx.conf_path, "%s/conf/%s", env->view, factory);
    return &the_ctx;
}

static void host_log(void *ctx, uint32_t level, const char *message) {
    struct runner_ctx *c = ctx;
    /* stderr reaches the user (a command) or the caller (a service):
     * warnings and errors only, unless ODYSSEY_ADDON_DEBUG is set. */
    if (level < ODY_LOG_WARNING && getenv("ODYSSEY_ADDON_DEBUG") == NULL) return;
    fprintf(stderr, "%s: %s\n", c != NULL ? c->id : "add-on", message != NULL ? message : "");
}

/* No host to hear events in this process: they are dropped, said once. */
static void host_emit(void *ctx, const ody_event *event) {
    (void)ctx;
    (void)event;
}

static int32_t host_config_get(void *ctx, const char *key, char *buf, size_t size, size_t *needed, uint32_t flags) {
    struct runner_ctx *c = ctx;
    if (c == NULL || key == NULL || flags != 0) return ODY_E_INVALID;
    FILE *f = fopen(c->conf_path, "re");
    if (f == NULL) return ODY_E_NOT_FOUND;
    char line[4096];
    size_t klen = strlen(key);
    int32_t rc = ODY_E_NOT_FOUND;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) != 0 || line[klen] != '=') continue;
        char *value = line + klen + 1;
        value[strcspn(value, "\n")] = 0;
        size_t n = strlen(value) + 1;
        if (needed != NULL) *needed = n;
        if (buf == NULL || size < n) { rc = ODY_E_TOO_SMALL; break; }
        memcpy(buf, value, n);
        rc = ODY_OK;
        break;
    }
    fclose(f);
    return rc;
}

/* The qrexec client: ODYSSEY_ADDON_CALL (tests) or the domain's ody-call. */
static const char *call_client(void) {
    const char *c = getenv("ODYSSEY_ADDON_CALL");
    if (c != NULL && c[0] == '/') return c;
    if (access("/.odyssey/bin/ody-call", X_OK) == 0) return "/.odyssey/bin/ody-call";
    return NULL;
}

static int32_t host_call_service(void *ctx, const char *target, const char *service, int32_t *fd,
                                 uint64_t *call_id, uint32_t flags, ody_error *err) {
    (void)ctx;
    if (flags != 0) return ody_error_set(err, ODY_E_FLAGS, 0, "call_service: unknown flag bits");
    if (target == NULL || service == NULL || fd == NULL || call_id == NULL)
        return ody_error_set(err, ODY_E_INVALID, 0, "call_service: missing argument");
    const char *client = call_client();
    if (client == NULL) return ody_error_set(err, ODY_E_UNSUPPORTED, 0, "no qrexec client here (/.odyssey/bin/ody-call is missing)");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return ody_error_set(err, ODY_E_IO, errno, "call_service: socketpair failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    /* stdout is the add-on's binary data: kept as sent. stderr goes to the
     * user: what the other domain writes there is filtered, terminal or
     * not, so it cannot drive a terminal. No name passes through a shell:
     * argv goes straight to exec. */
    char *const argv[] = {(char *)client, "--no-filter-escape-chars-stdout", "--filter-escape-chars-stderr", "--",
                          (char *)target, (char *)service, NULL};   /* "--": a target never becomes an option */
    pid_t pid;
    int rc = posix_spawn(&pid, client, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return ody_error_set(err, ODY_E_IO, rc, "call_service: cannot start the qrexec client");
    }
    *fd = sv[0];
    *call_id = (uint64_t)pid;
    return ODY_OK;
}

static int32_t host_call_finish(void *ctx, uint64_t call_id, int32_t *exit_status, uint32_t flags, ody_error *err) {
    (void)ctx;
    if (flags != 0) return ody_error_set(err, ODY_E_FLAGS, 0, "call_finish: unknown flag bits");
    int status = 0;
    pid_t r;
    while ((r = waitpid((pid_t)call_id, &status, 0)) < 0 && errno == EINTR) {}
    if (r < 0) return ody_error_set(err, ODY_E_INVALID, errno, "call_finish: no such call");
    if (exit_status != NULL) *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return ODY_OK;
}

static const ody_host_services table = {
    .struct_size = sizeof(ody_host_services),
    .version = ODY_ABI_MINOR,
    .log = host_log,
    .emit_event = host_emit,
    .config_get = host_config_get,
    .call_service = host_call_service,
    .call_finish = host_call_finish,
};

const ody_host_services *runner_host_services(void) { return &table; }
