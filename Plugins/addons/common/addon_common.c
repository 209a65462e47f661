/* addon_common.c - see include/addon_common.h. */
#define _GNU_SOURCE
#include "addon_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int32_t addon_entry(const struct addon_definition *def, const ody_entry_request *req,
                    ody_plugin_info *info, ody_error *err) {
    if (req == NULL || info == NULL || req->struct_size < sizeof(ody_entry_request))
        return ody_error_set(err, ODY_E_INVALID, 0, "bad entry request");
    if (req->abi_major != ODY_ABI_MAJOR) return ody_error_set(err, ODY_E_ABI, 0, "built for another ABI major");
    /* run_command and call_service arrived in 1.1: an older host cannot run these add-ons. */
    if (req->abi_minor < 1) return ody_error_set(err, ODY_E_ABI, 0, "needs a host with ABI 1.1 or later");
    if (info->struct_size < sizeof(ody_plugin_info)) return ody_error_set(err, ODY_E_ABI, 0, "host's plugin info is too small");
    static const ody_factory *factories[1];
    factories[0] = def->factory;
    info->abi_major = ODY_ABI_MAJOR;
    info->abi_minor = ody_negotiate_minor(req->abi_minor);
    info->id = def->id;
    info->version = def->version;
    info->license = def->license;
    info->description = def->description;
    info->factory_count = 1;
    info->factories = factories;
    return ODY_OK;
}

int32_t addon_open(const ody_instance_args *args, ody_addon **out, ody_error *err) {
    if (args == NULL || out == NULL || args->struct_size < sizeof(ody_instance_args))
        return ody_error_set(err, ODY_E_INVALID, 0, "bad open arguments");
    if (ody_check_flags(args->flags, 0, err) != ODY_OK) return ODY_E_FLAGS;
    struct ody_addon *a = calloc(1, sizeof *a);
    if (a == NULL) return ody_error_set(err, ODY_E_NO_MEMORY, 0, "out of memory");
    a->host = args->host;
    a->ctx = args->host_ctx;
    snprintf(a->name, sizeof a->name, "%s", args->instance_name != NULL ? args->instance_name : "add-on");
    *out = a;
    return ODY_OK;
}

void addon_close(ody_addon *a, uint32_t flags) {
    (void)flags;
    free(a);
}

const char *addon_config(ody_addon *a, const char *key, char *buf, size_t size, const char *fallback) {
    size_t needed = 0;
    if (a != NULL && a->host != NULL && a->host->config_get != NULL &&
        a->host->config_get(a->ctx, key, buf, size, &needed, 0) == ODY_OK)
        return buf;
    return fallback;
}

uint64_t addon_config_u64(ody_addon *a, const char *key, uint64_t fallback) {
    char buf[64];
    const char *v = addon_config(a, key, buf, sizeof buf, NULL);
    if (v == NULL || v[0] == 0) return fallback;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != 0) {
        addon_log(a, ODY_LOG_WARNING, "config %s=\"%s\" is not a number; using %llu", key, v, (unsigned long long)fallback);
        return fallback;
    }
    return n;
}

void addon_log(ody_addon *a, uint32_t level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a != NULL && a->host != NULL && a->host->log != NULL) a->host->log(a->ctx, level, msg);
}

int addon_call(ody_addon *a, const char *target, const char *service, int *fd, uint64_t *call, int stderr_fd) {
    if (a == NULL || a->host == NULL || !ODY_HAS_MEMBER(a->host, ody_host_services, call_service) ||
        a->host->call_service == NULL) {
        say(stderr_fd, "%s: this host cannot make qrexec calls (call_service unsupported)", a != NULL ? a->name : "add-on");
        return -1;
    }
    ody_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    int32_t cfd = -1;
    int32_t rc = a->host->call_service(a->ctx, target, service, &cfd, call, 0, &err);
    if (rc != ODY_OK) {
        say(stderr_fd, "%s: cannot call %s in %s: %s", a->name, service, target, err.message);
        return -1;
    }
    *fd = cfd;
    return 0;
}

int addon_call_finish(ody_addon *a, uint64_t call) {
    ody_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    int32_t status = 125;
    if (a->host->call_finish == NULL || a->host->call_finish(a->ctx, call, &status, 0, &err) != ODY_OK) return 125;
    return status;
}

int write_all(int fd, const void *buf, size_t size) {
    const char *p = buf;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

ssize_t read_upto(int fd, void *buf, size_t size) {
    char *p = buf;
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, p + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int read_exact(int fd, void *buf, size_t size) {
    ssize_t n = read_upto(fd, buf, size);
    if (n < 0) return -1;
    if ((size_t)n != size) {
        errno = 0;
        return -1;
    }
    return 0;
}

int addon_caller_uuid(char out[ADDON_UUID_SIZE]) {
    const char *untrusted = getenv("QREXEC_REMOTE_DOMAIN_UUID");
    if (untrusted == NULL || strlen(untrusted) != ADDON_UUID_SIZE - 1) return -1;
    for (int i = 0; i < ADDON_UUID_SIZE - 1; i++) {
        char c = untrusted[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return -1;
    }
    memcpy(out, untrusted, ADDON_UUID_SIZE);
    return 0;
}

int addon_fs_has_room(int fd, uint64_t more, uint64_t min_free_percent) {
    struct statvfs fs;
    if (min_free_percent == 0 || fstatvfs(fd, &fs) != 0 || fs.f_blocks == 0) return 1;
    if (min_free_percent > 100) min_free_percent = 100;
    uint64_t unit = fs.f_frsize != 0 ? fs.f_frsize : fs.f_bsize;
    uint64_t avail = (uint64_t)fs.f_bavail * unit;
    uint64_t keep = (uint64_t)fs.f_blocks / 100 * min_free_percent * unit;
    return avail >= keep && more <= avail - keep;
}

int addon_private_dir(const char *leaf, char *why, size_t why_size) {
    char path[4096];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    int n;
    if (xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
        n = snprintf(path, sizeof path, "%s/%s", xdg, leaf);
    else
        n = snprintf(path, sizeof path, "/tmp/%s-%u", leaf, (unsigned)geteuid());
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(why, why_size, "the runtime directory's path is too long");
        return -1;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(why, why_size, "cannot create %s (%s)", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_size, "cannot open %s (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(why, why_size, "%s is not a private directory of this user", path);
        close(fd);
        return -1;
    }
    return fd;
}

int addon_take_slot(int dir, const char *key, uint64_t max) {
    for (uint64_t i = 0; i < max; i++) {
        char name[128];
        snprintf(name, sizeof name, "busy-%s.%llu", key, (unsigned long long)i);
        int fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        int e = errno;
        close(fd);
        if (e != EWOULDBLOCK) {
            errno = e;
            return -1;
        }
    }
    errno = EBUSY;
    return -1;
}

void say(int fd, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof msg - 2) n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    (void)write_all(fd, msg, (size_t)n);
}

int32_t addon_check_service_call(const ody_service_call *call, int32_t *exit_status, uint32_t flags, ody_error *err) {
    if (ody_check_flags(flags, 0, err) != ODY_OK) return ODY_E_FLAGS;
    if (call == NULL || call->struct_size < sizeof(ody_service_call) || exit_status == NULL)
        return ody_error_set(err, ODY_E_INVALID, 0, "bad service call");
    return ODY_OK;
}

int32_t addon_check_command_call(const ody_command_call *call, int32_t *exit_status, uint32_t flags, ody_error *err) {
    if (ody_check_flags(flags, 0, err) != ODY_OK) return ODY_E_FLAGS;
    if (call == NULL || call->struct_size < sizeof(ody_command_call) || exit_status == NULL || call->argc < 1 ||
        call->argv == NULL)
        return ody_error_set(err, ODY_E_INVALID, 0, "bad command call");
    return ODY_OK;
}
