/* split_gpg_consent.c - see split_gpg_consent.h. */
#define _GNU_SOURCE
#include "split_gpg_consent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int split_gpg_valid_domain(const char *s) {
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 31) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

/* Where consents are remembered (addon_private_dir "odyssey-split-gpg").
 * -1 (said on err_fd) if it cannot be trusted: the vault then asks every
 * time. */
static int open_runtime_dir(int err_fd) {
    char why[4200];
    int fd = addon_private_dir("odyssey-split-gpg", why, sizeof why);
    if (fd < 0) say(err_fd, "split-gpg: %s; consent is not remembered", why);
    return fd;
}

/* Remembered: consent-SOURCE is a regular file of ours, modified within
 * `seconds`, whose content is exactly the uuid of this caller. The uuid
 * and not the name is what was trusted: a domain removed and created again
 * under the same name is another domain (another uuid) and is asked again. */
static int remembered(int dir, const char *name, const char *uuid, uint64_t seconds) {
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return 0;
    struct stat st;
    char untrusted_uuid[ADDON_UUID_SIZE + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
        n = read_upto(fd, untrusted_uuid, sizeof untrusted_uuid);
    close(fd);
    if (n != ADDON_UUID_SIZE - 1 || memcmp(untrusted_uuid, uuid, ADDON_UUID_SIZE - 1) != 0) return 0;
    time_t now = time(NULL);
    /* A time in the future (a clock set back) does not count as recent. */
    if (st.st_mtime > now) return 0;
    return (uint64_t)(now - st.st_mtime) < seconds;
}

/* consent-SOURCE := uuid, written to a temporary name and renamed over the
 * old record, so a reader never sees half of it. */
static void remember(int dir, const char *name, const char *uuid, int err_fd) {
    char tmp[96];
    snprintf(tmp, sizeof tmp, ".%s.%ld", name, (long)getpid());
    (void)unlinkat(dir, tmp, 0);
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0 || write_all(fd, uuid, ADDON_UUID_SIZE - 1) != 0 || renameat(dir, tmp, dir, name) != 0) {
        say(err_fd, "split-gpg: cannot record the consent for %s: %s", name, strerror(errno));
        (void)unlinkat(dir, tmp, 0);
    }
    if (fd >= 0) close(fd);
}

/* Asks through policy: the exit status of odyssey.GpgConsent+SOURCE. */
static int ask(ody_addon *a, const char *source, int err_fd) {
    char service[128];
    snprintf(service, sizeof service, "odyssey.GpgConsent+%s", source);
    int fd = -1;
    uint64_t call = 0;
    if (addon_call(a, "@adminvm", service, &fd, &call, err_fd) != 0) return 125;
    (void)shutdown(fd, SHUT_WR);
    char sink[256];
    while (read_upto(fd, sink, sizeof sink) == (ssize_t)sizeof sink) {}
    close(fd);
    return addon_call_finish(a, call);
}

int consent_obtain(ody_addon *a, const char *source, int err_fd, char *why, size_t why_size) {
    if (!split_gpg_valid_domain(source)) {
        snprintf(why, why_size, "split-gpg: the calling domain's name is not valid; refused");
        return -1;
    }
    uint64_t seconds = addon_config_u64(a, "autoaccept_seconds", 300);
    /* Without the caller's uuid (a host that does not pass it) a remembered
     * consent could belong to an earlier domain of the same name: ask every
     * time rather than guess. */
    char uuid[ADDON_UUID_SIZE];
    int have_uuid = addon_caller_uuid(uuid) == 0;
    if (seconds > 0 && !have_uuid)
        say(err_fd, "split-gpg: the host did not pass the caller's uuid; consent is not remembered");
    char name[64];
    snprintf(name, sizeof name, "consent-%s", source);
    int dir = seconds > 0 && have_uuid ? open_runtime_dir(err_fd) : -1;
    if (dir >= 0 && remembered(dir, name, uuid, seconds)) {
        close(dir);
        return 0;
    }
    int status = ask(a, source, err_fd);
    if (status != 0) {
        if (dir >= 0) close(dir);
        snprintf(why, why_size, "split-gpg: the vault's user did not allow %s to use its keys (odyssey.GpgConsent: %s)",
                 source, status == 126 ? "refused" : "failed");
        return -1;
    }
    if (dir >= 0) {
        remember(dir, name, uuid, err_fd);
        close(dir);
    }
    return 0;
}

int consent_service(ody_addon *a, const ody_service_call *call) {
    const char *untrusted_arg = call->argument;
    if (untrusted_arg[0] == '+') untrusted_arg++;
    if (!split_gpg_valid_domain(untrusted_arg)) {
        say(call->stderr_fd, "odyssey.GpgConsent: the argument must be a domain name");
        return 2;
    }
    const char *client = untrusted_arg;   /* validated: a domain name */
    addon_log(a, ODY_LOG_INFO, "split-gpg: the user allowed %s to use the keys in %s", client, call->source);
    return 0;
}
