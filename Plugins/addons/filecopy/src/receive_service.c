/*
 * receive_service.c - qubes.Filecopy, the domain side: the copy lands in
 * ~/QubesIncoming/SOURCE/ (SOURCE from the channel, never from the data).
 *
 * This process makes the incoming directory and forks the child that
 * parses the stream: the child confines itself there (confine.c) and
 * unpacks (unpack.c), then reports its verdict through a pipe. This
 * process, which never reads the stream, syncs the file system and sends
 * the result_header: a crash of the child still gets an answer.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child tells the parent; the last name follows. */
struct child_report {
    uint32_t code;
    uint32_t crc;
    uint32_t namelen;
};

static void reply(int out_fd, uint32_t code, uint32_t crc, const char *name, size_t name_len) {
    struct fc_result_header r = {.error_code = code, .pad = 0, .crc32 = crc};
    unsigned char buf[sizeof r + 4 + FC_MAX_NAME];
    size_t n = 0;
    memcpy(buf, &r, sizeof r);
    n += sizeof r;
    if (code != 0) {
        if (name_len > FC_MAX_NAME) name_len = FC_MAX_NAME;
        uint32_t len = (uint32_t)name_len;
        memcpy(buf + n, &len, 4);
        memcpy(buf + n + 4, name, name_len);
        n += 4 + name_len;
    }
    (void)write_all(out_fd, buf, n);   /* a sender that left hears nothing: nothing to do */
}

/* The refusal before any byte was read: one line, and the answer. */
static int32_t refuse(const ody_service_call *call, int32_t *exit_status, int code, const char *fmt, const char *what) {
    char line[1024];
    snprintf(line, sizeof line, fmt, what);
    say(call->stderr_fd, "qubes.Filecopy: refusing the copy from %s: %s", call->source, line);
    reply(call->stdout_fd, (uint32_t)(code != 0 ? code : EIO), 0, "", 0);   /* 0 would read as success */
    *exit_status = 1;
    return ODY_OK;
}

/* mkdir (if missing) then open without following a link; new directories
 * belong to HOME's owner (the service may run as root). */
static int make_dir(int at, const char *name, uid_t uid, gid_t gid) {
    if (mkdirat(at, name, 0700) == 0) {
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && geteuid() == 0 && fchown(fd, uid, gid) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    if (errno != EEXIST) return -1;
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Closes every descriptor except those in keep (sorted here). */
static void close_all_but(int *keep, size_t n) {
    qsort(keep, n, sizeof *keep, cmp_int);
    unsigned from = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned to = i < n ? (unsigned)keep[i] : ~0u;
        if (i < n && keep[i] < 0) continue;
        if (to > from && close_range(from, to - 1, 0) != 0)
            for (unsigned fd = from; fd < to && fd < 65536; fd++) close((int)fd);
        if (i < n) from = (unsigned)keep[i] + 1;
    }
}

static void run_child(const ody_service_call *call, const char *dir, int dir_fd, uid_t uid, gid_t gid,
                      const struct fc_unpack_limits *lim, int report_fd) {
    static struct fc_unpack_result res;   /* 16 KiB: not on the stack of a forked child */
    /* Only the stream (stdin), stderr, the report pipe and the directory
     * stay open: anything else could lead outside the chroot. */
    int keep[] = {call->stdin_fd, call->stderr_fd, report_fd, dir_fd};
    close_all_but(keep, sizeof keep / sizeof keep[0]);
    char why[512];
    memset(&res, 0, sizeof res);
    int root_fd = -1;
    if (fc_confine(dir, dir_fd, uid, gid, &root_fd, why, sizeof why) != 0) {
        say(call->stderr_fd, "qubes.Filecopy: refusing the copy from %s: cannot confine the receiver (%s)", call->source, why);
        res.code = EPERM;
    } else {
        fc_unpack(call->stdin_fd, root_fd, lim, &res, call->source, call->stderr_fd);
    }
    size_t nlen = strnlen(res.last_name, sizeof res.last_name);
    struct child_report rep = {.code = res.code, .crc = res.crc, .namelen = (uint32_t)nlen};
    if (write_all(report_fd, &rep, sizeof rep) != 0 || write_all(report_fd, res.last_name, nlen) != 0) _exit(2);
    _exit(res.code == 0 ? 0 : 1);
}

static int argument_allows_all(const char *arg, int *allow_all) {
    const char *a = arg[0] == '+' ? arg + 1 : arg;
    if (a[0] == 0) *allow_all = 0;
    else if (strcmp(a, FC_ALL_NAMES_ARG) == 0) *allow_all = 1;
    else return -1;
    return 0;
}

/* The copy itself, once it holds one of its source's slots. */
static int32_t receive(ody_addon *a, const ody_service_call *call, int32_t *exit_status) {
    struct fc_unpack_limits lim;
    memset(&lim, 0, sizeof lim);
    if (argument_allows_all(call->argument, &lim.allow_all_names) != 0)
        return refuse(call, exit_status, EINVAL, "unknown argument \"%s\" (only allow-all-names)", call->argument);
    const char *source = call->source;   /* checked by fc_receive_service */
    lim.quota_bytes = addon_config_u64(a, "quota_bytes", 68719476736ull);
    lim.quota_files = addon_config_u64(a, "quota_files", 1000000ull);
    uint64_t incoming_quota_bytes = addon_config_u64(a, "incoming_quota_bytes", 68719476736ull);
    uint64_t incoming_quota_files = addon_config_u64(a, "incoming_quota_files", 1000000ull);
    lim.min_free_percent = addon_config_u64(a, "min_free_percent", 5);

    const char *home = getenv("HOME");
    struct passwd *pw = NULL;
    if (home == NULL || home[0] != '/') {
        pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL) return refuse(call, exit_status, ENOENT, "%s", "no HOME to receive into");
    int home_fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat hs;
    if (home_fd < 0 || fstat(home_fd, &hs) != 0) {
        if (home_fd >= 0) close(home_fd);
        return refuse(call, exit_status, errno, "cannot open HOME %s", home);
    }
    int qi_fd = make_dir(home_fd, "QubesIncoming", hs.st_uid, hs.st_gid);
    int in_fd = qi_fd >= 0 ? make_dir(qi_fd, source, hs.st_uid, hs.st_gid) : -1;
    int e = errno;
    close(home_fd);
    if (qi_fd >= 0) close(qi_fd);
    if (in_fd < 0) {
        errno = e;
        return refuse(call, exit_status, e, "cannot make ~/QubesIncoming/%s (or it is not a directory)", source);
    }
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s/QubesIncoming/%s", home, source) >= sizeof dir) {
        close(in_fd);
        return refuse(call, exit_status, ENAMETOOLONG, "%s", "HOME is too long");
    }
    /* The per-receiver quota: what every source's earlier copies left room for. */
    uint64_t used_bytes, used_files;
    char why[512];
    char all_sources[4096];
    snprintf(all_sources, sizeof all_sources, "%s/QubesIncoming", home);   /* shorter than dir */
    if (fc_incoming_usage(all_sources, incoming_quota_files, &used_bytes, &used_files, why, sizeof why) != 0) {
        close(in_fd);
        return refuse(call, exit_status, EIO, "cannot count what QubesIncoming holds: %s", why);
    }
    lim.incoming_bytes_left = used_bytes < incoming_quota_bytes ? incoming_quota_bytes - used_bytes : 0;
    lim.incoming_files_left = used_files < incoming_quota_files ? incoming_quota_files - used_files : 0;

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        close(in_fd);
        return refuse(call, exit_status, errno, "%s", "cannot make a pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in_fd);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return refuse(call, exit_status, errno, "%s", "cannot fork the receiver");
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        run_child(call, dir, in_fd, hs.st_uid, hs.st_gid, &lim, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    static char name[FC_MAX_NAME];
    struct child_report rep;
    ssize_t got = read_upto(pipe_fds[0], &rep, sizeof rep);
    ssize_t name_got = got == (ssize_t)sizeof rep && rep.namelen <= FC_MAX_NAME ? read_upto(pipe_fds[0], name, rep.namelen) : -1;
    close(pipe_fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (name_got < 0 || (size_t)name_got != rep.namelen) {
        say(call->stderr_fd, "qubes.Filecopy: the receiver of the copy from %s died (%s %d) without a verdict", source,
            WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        rep.code = EIO;
        rep.crc = 0;
        name_got = 0;
    }
    /* Everything on disk before the sender hears "done" (and may delete its originals). */
    if (syncfs(in_fd) != 0 && rep.code == 0) {
        say(call->stderr_fd, "qubes.Filecopy: cannot sync the copy from %s: %s", source, strerror(errno));
        rep.code = EIO;
    }
    close(in_fd);
    reply(call->stdout_fd, rep.code, rep.crc, name, (size_t)name_got);
    *exit_status = rep.code == 0 ? 0 : 1;
    return ODY_OK;
}

/* At most max_concurrent_copies copies from one source at a time (default
 * 4): each holds a process, a child and 4 MiB of buffers in this domain,
 * and copies running together each see the same room under the receiver's
 * quota. The count is a set of locked files in a private runtime
 * directory, freed by the kernel when a receiver ends, however it ends. */
int32_t fc_receive_service(ody_addon *a, const ody_service_call *call, int32_t *exit_status) {
    const char *source = call->source;
    if (source[0] == 0 || strchr(source, '/') != NULL || strcmp(source, ".") == 0 || strcmp(source, "..") == 0)
        return refuse(call, exit_status, EINVAL, "the calling domain's name \"%s\" cannot name a directory", source);
    uint64_t max = addon_config_u64(a, "max_concurrent_copies", 4);
    int slot = -1;
    if (max > 0) {
        char why[4200];
        int dir = addon_private_dir("odyssey-filecopy", why, sizeof why);
        if (dir < 0) return refuse(call, exit_status, EPERM, "cannot count the copies in progress: %s", why);
        slot = addon_take_slot(dir, source, max);
        int e = errno;
        close(dir);
        if (slot < 0 && e == EBUSY) {
            snprintf(why, sizeof why, "%llu copies from %s are already running (max_concurrent_copies)",
                     (unsigned long long)max, source);
            return refuse(call, exit_status, EBUSY, "%s", why);
        }
        if (slot < 0) return refuse(call, exit_status, e, "cannot count the copies in progress: %s", strerror(e));
    }
    int32_t rc = receive(a, call, exit_status);
    if (slot >= 0) close(slot);
    return rc;
}
