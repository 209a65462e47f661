/*
 * program.c - finding and running the viewer or URL handler.
 *
 * The program comes from this domain's config, the argument (a path we made,
 * or a URL already checked) from the other domain: it goes to the program as
 * one argv entry through posix_spawn, never through a shell.
 */
#define _GNU_SOURCE
#include "open_in_vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int executable_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int program_resolve(const char *name, char *out, size_t size) {
    if (name == NULL || name[0] == 0) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(name, '/') != NULL) {
        /* A relative path would depend on the service's working directory. */
        if (name[0] != '/') {
            errno = EINVAL;
            return -1;
        }
        if (strlen(name) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (!executable_file(name)) {
            errno = ENOENT;
            return -1;
        }
        memcpy(out, name, strlen(name) + 1);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == 0) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *dir = path; *dir != 0;) {
        size_t dlen = strcspn(dir, ":");
        /* An empty or relative entry means the current directory: skipped. */
        if (dlen > 0 && dir[0] == '/') {
            int n = snprintf(out, size, "%.*s/%s", (int)dlen, dir, name);
            if (n > 0 && (size_t)n < size && executable_file(out)) return 0;
        }
        dir += dlen;
        if (*dir == ':') dir++;
    }
    errno = ENOENT;
    return -1;
}

int program_run(const char *path, const char *arg, int *status) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        errno = rc;
        return -1;
    }
    /* stdout is the qrexec channel (data going back) and stderr reaches the
     * caller unfiltered: the program, busy with untrusted content, gets
     * neither. Its success is its exit status. */
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* odyssey-addon-run ignores SIGPIPE; an ignored signal survives exec,
     * so give the program the default back. */
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigemptyset(&empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    char *const argv[] = {(char *)path, (char *)arg, NULL};
    if (rc == 0) rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int ws = 0;
    pid_t r;
    while ((r = waitpid(pid, &ws, 0)) < 0 && errno == EINTR) {}
    if (r < 0) return -1;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 0;
}
