/*
 * odyssey-jailer - builds one native domain and execs its init as PID 1.
 *
 * Why a separate program, and why C: the vmm-native plugin lives inside the
 * multithreaded host. Code between fork and exec must not run in a
 * multithreaded Swift process (locks held by other threads, allocator state),
 * Swift cannot call fork()/clone() or the variadic syscall(), and setns() into
 * a user namespace is refused to multithreaded processes. So the plugin
 * posix_spawn()s this small single-threaded program (as Firecracker spawns its
 * jailer), hands it a spec on fd 3 and reads one status line on fd 4.
 * Plain C keeps it tiny, starts in well under a millisecond, and links only
 * libc + libseccomp.
 *
 * Protocol (written by Plugins/vmm-native/Sources/JailerSpec.swift):
 *   fd 3  spec: NUL-separated "key=value" entries, read until EOF.
 *   fd 4  status: exactly one line, then EOF:
 *           "ok PID"                       init exec'd; PID is its host pid
 *           "err PID ERRNO message"         a step failed; PID is -1 or the
 *                                           dead child the caller must reap
 *   fd 0-2 become init's stdin/stdout/stderr (the plugin's console log).
 *   Spec keys: name hostname root_mode root_dir run_dir private_dir init
 *   uid_base uid_count volatile_mib nofile_max root_upper_mib; repeated: arg env cgroup bind_ro bind_rw
 *   seccomp; seccomp_default (absent: no filter; the plugin always sends one).
 *
 * Process shape: the jailer J joins the domain's cgroups, creates the
 * domain's user namespace through a short-lived helper (a process cannot
 * write its own uid_map with a foreign range), then clone()s the domain's
 * init C with CLONE_PARENT, so C is a child of the host process (which reaps
 * it and learns its exit status) and J exits as soon as C has exec'd.
 * C starts as root of the host user namespace in fresh pid, mount, net, ipc,
 * uts and cgroup namespaces, builds the root file system, pivots into it,
 * and only then enters the domain's user namespace, sets no_new_privs, loads
 * the seccomp filter and execs init. The namespaces other than the user
 * namespace are therefore owned by the host's user namespace: the domain's
 * root holds capabilities over its user namespace only, and cannot mount,
 * change its hostname or reconfigure its network even without seccomp.
 * No PDEATHSIG: domains outlive the host process, which re-adopts them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jailer.h"

#define SPEC_FD 3
#define STATUS_FD 4
#define MAX_ITEMS 512

/* ------------------------------------------------------------- the spec */

static char *spec_buf;
static char *items[MAX_ITEMS];
static int item_count;

const char *get(const char *key) {
    size_t n = strlen(key);
    for (int i = 0; i < item_count; i++)
        if (strncmp(items[i], key, n) == 0 && items[i][n] == '=') return items[i] + n + 1;
    return NULL;
}

/* The i-th value of a repeated key, or NULL past the last. */
const char *get_nth(const char *key, int nth) {
    size_t n = strlen(key);
    for (int i = 0; i < item_count; i++)
        if (strncmp(items[i], key, n) == 0 && items[i][n] == '=' && nth-- == 0) return items[i] + n + 1;
    return NULL;
}

/* --------------------------------------------------------------- errors */

static const char *domain_name = "?";
static int report_fd = STATUS_FD; /* J: to the plugin; C: to J */

/* Reports "native: <step> for <domain>: <ERRNO> (<detail>)" and exits. */
void die(int err, const char *step, const char *fmt, ...) {
    char detail[768] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    const char *ename = err ? strerrorname_np(err) : NULL;
    char line[1200];
    int n = snprintf(line, sizeof line, "err -1 %d native: %s for %s: %s%s%s%s\n", err, step, domain_name,
                     ename ? ename : (err ? "error" : "failed"), detail[0] ? " (" : "", detail,
                     detail[0] ? ")" : "");
    if (n > (int)sizeof line - 1) n = sizeof line - 1;
    ssize_t w = write(report_fd, line, (size_t)n);
    (void)w;
    _exit(1);
}

/* ------------------------------------------------------------- helpers */

/* snprintf into a path buffer, failing loudly instead of truncating. */
#define PATHF(buf, ...)                                                        \
    do {                                                                       \
        if (snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf))    \
            die(ENAMETOOLONG, "path", "%.100s...", (buf));                     \
    } while (0)

static void write_file(const char *path, const char *value, const char *step) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die(errno, step, "open %s", path);
    size_t len = strlen(value);
    if (write(fd, value, len) != (ssize_t)len) die(errno, step, "write '%s' to %s", value, path);
    close(fd);
}

/* mkdir -p, each created directory owned by uid:gid (-1 keeps root). */
static void mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) die(ENAMETOOLONG, "mkdir", "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) == 0) {
                if (uid != (uid_t)-1 && chown(buf, uid, gid) != 0) die(errno, "chown", "%s", buf);
            } else if (errno != EEXIST) {
                die(errno, "mkdir", "%s", buf);
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }
}

static void do_mount(const char *src, const char *target, const char *type, unsigned long flags,
                     const char *data, const char *step) {
    if (mount(src, target, type, flags, data) != 0)
        die(errno, step, "%s on %s%s%s", src ? src : type, target, data ? ", " : "", data ? data : "");
}

static unsigned long parse_ul(const char *key, unsigned long def) {
    const char *v = get(key);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end) die(EINVAL, "parse spec", "%s=%s", key, v);
    return x;
}

/* --------------------------------------------------------- the domain */

struct domain {
    const char *root_mode, *root_dir, *run_dir, *private_dir, *init, *hostname;
    unsigned long uid_base, uid_count, volatile_mib, nofile_max, root_upper_mib;
    int userns_fd;
    scmp_filter_ctx seccomp;
};

/* Creates the domain's user namespace (root -> uid_base, uid_count ids) and
 * returns an fd to it. A process cannot give itself a foreign uid range, so a
 * helper child unshares and we, root in the parent namespace, write its maps. */
static int make_userns(const struct domain *d) {
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0) die(errno, "userns pipe", NULL);
    pid_t helper = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (helper < 0) die(errno, "create user namespace", "clone(CLONE_NEWUSER)");
    if (helper == 0) {
        char c;
        close(gate[1]);
        ssize_t r = read(gate[0], &c, 1); /* EOF when the parent is done */
        (void)r;
        _exit(0);
    }
    close(gate[0]);
    char path[64], map[96];
    snprintf(map, sizeof map, "0 %lu %lu\n", d->uid_base, d->uid_count);
    snprintf(path, sizeof path, "/proc/%d/uid_map", helper);
    write_file(path, map, "write uid_map");
    snprintf(path, sizeof path, "/proc/%d/gid_map", helper);
    write_file(path, map, "write gid_map");
    snprintf(path, sizeof path, "/proc/%d/ns/user", helper);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(errno, "open user namespace", "%s", path);
    close(gate[1]);
    while (waitpid(helper, NULL, 0) < 0 && errno == EINTR) {}
    return fd;
}

/* A detached idmapped copy of the directory `path` (relative to dirfd; ""
 * for dirfd itself): files owned by uid k on disk appear owned by k inside the
 * domain (uid_base+k on the host), and what the domain's uid k writes is k on
 * disk. So the template (root's on disk) is root's in the domain, and the
 * private volume holds the guest's own ids, as a VM provider writes them. */
static int idmapped_clone(const struct domain *d, int dirfd, const char *path, int readonly, const char *what) {
    int tree = open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (*path ? 0 : AT_EMPTY_PATH));
    if (tree < 0) die(errno, what, "open_tree %s", *path ? path : "(fd)");
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP | (readonly ? MOUNT_ATTR_RDONLY : 0),
                              .userns_fd = (uint64_t)d->userns_fd};
    if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
        die(errno, what, "idmap %s: the file system must support idmapped mounts", *path ? path : "(fd)");
    return tree;
}

/* Attaches root_dir at `target` through an idmapped mount. */
static void idmapped_bind(const struct domain *d, const char *target, int readonly) {
    int tree = idmapped_clone(d, AT_FDCWD, d->root_dir, readonly, "root_dir");
    if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        die(errno, "attach root_dir", "%s on %s", d->root_dir, target);
    close(tree);
}

/* A minimal /dev on a small tmpfs (we are still host root, so mknod works;
 * the domain gets the nodes, never the right to make more). */
static void make_dev(uid_t ns_root) {
    char p[64], opts[128];
    do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", "mount /dev");
    static const struct { const char *name; unsigned maj, min; } nodes[] = {
        {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        PATHF(p, "/dev/%s", nodes[i].name);
        if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) != 0) die(errno, "mknod", "%s", p);
        if (chmod(p, 0666) != 0) die(errno, "chmod", "%s", p); /* umask */
    }
    mkdir_p("/dev/pts", 0755, (uid_t)-1, (gid_t)-1);
    snprintf(opts, sizeof opts, "newinstance,ptmxmode=0666,mode=0620,gid=%u", ns_root + 5);
    do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, opts, "mount /dev/pts");
    mkdir_p("/dev/shm", 0755, (uid_t)-1, (gid_t)-1);
    snprintf(opts, sizeof opts, "mode=1777,size=64m,uid=%u,gid=%u", ns_root, ns_root);
    do_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts, "mount /dev/shm");
    static const struct { const char *name, *to; } links[] = {
        {"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
        {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        PATHF(p, "/dev/%s", links[i].name);
        if (symlink(links[i].to, p) != 0) die(errno, "symlink", "%s", p);
    }
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) die(errno, "loopback", "socket");
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die(errno, "loopback", "SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die(errno, "loopback", "SIOCSIFFLAGS lo up");
    close(s);
}

/* A detached copy of a host directory tree, to be attached inside the new
 * root after pivot_root (see build_and_exec). */
struct tree { int fd; const char *target; const char *what; };

static struct tree capture_at(int dirfd, const char *src, const char *target, int readonly, const char *what) {
    int fd = open_tree(dirfd, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | (*src ? 0 : AT_EMPTY_PATH));
    if (fd < 0) die(errno, what, "open_tree %s", *src ? src : target);
    if (readonly) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
            die(errno, what, "make %s read-only", src);
    }
    return (struct tree){fd, target, what};
}

static struct tree capture(const char *src, const char *target, int readonly, const char *what) {
    return capture_at(AT_FDCWD, src, target, readonly, what);
}

/* The private volume and its home/ are written by the domain, so they are
 * opened without following symlinks: a domain that turned /rw/home into a
 * symlink to a host path gets an error at its next start, not that path.
 * Both are idmapped: on disk the volume holds the guest's own ids whichever
 * provider ran the domain (vmm-native's PrivateOwnership shifts an older
 * volume first), so home/ is made as host root, i.e. the guest's root. */
static void capture_private(const struct domain *d, struct tree *out) {
    int pfd = open(d->private_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0) die(errno, "private_dir", "open %s", d->private_dir);
    if (mkdirat(pfd, "home", 0755) != 0 && errno != EEXIST) die(errno, "mkdir", "%s/home", d->private_dir);
    int hfd = openat(pfd, "home", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (hfd < 0) die(errno, "private_dir/home", "%s/home must be a directory, not a symlink", d->private_dir);
    out[0] = (struct tree){idmapped_clone(d, pfd, "", 0, "private_dir"), "/rw", "private_dir"};
    out[1] = (struct tree){idmapped_clone(d, hfd, "", 0, "private_dir/home"), "/home", "private_dir/home"};
    close(hfd);
    close(pfd);
}

/* Attaches a captured tree at `target` inside the new root, creating the
 * mount point (a directory, or an empty file for a file source). */
static void attach(const struct tree *t, uid_t ns_root) {
    struct stat st;
    if (fstat(t->fd, &st) != 0) die(errno, t->what, "stat source of %s", t->target);
    /* Mount points are created as the domain's root: on an idmapped root the
     * host's root has no mapping there (EOVERFLOW), and they belong to the
     * domain anyway. */
    if (setfsgid(ns_root) < 0 || setfsuid(ns_root) < 0) die(errno, "setfsuid", NULL);
    if (S_ISDIR(st.st_mode)) {
        mkdir_p(t->target, 0755, (uid_t)-1, (gid_t)-1);
    } else {
        char parent[4096];
        PATHF(parent, "%s", t->target);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) { *slash = '\0'; mkdir_p(parent, 0755, (uid_t)-1, (gid_t)-1); }
        /* A file already there is the mount point (the agent inside the
         * read-only shared /.odyssey/bin: opening it for writing would fail). */
        struct stat existing;
        int fd = lstat(t->target, &existing) == 0 && S_ISREG(existing.st_mode)
                     ? -2 : open(t->target, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd == -1 && errno != EISDIR) die(errno, t->what, "create mount point %s", t->target);
        if (fd >= 0) close(fd);
    }
    setfsuid(0);
    setfsgid(0);
    if (move_mount(t->fd, "", AT_FDCWD, t->target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        die(errno, t->what, "attach at %s", t->target);
    close(t->fd);
}

static void mountpoint(const char *path, mode_t mode, uid_t ns_root) {
    if (setfsgid(ns_root) < 0 || setfsuid(ns_root) < 0) die(errno, "setfsuid", NULL);
    mkdir_p(path, mode, (uid_t)-1, (gid_t)-1);
    setfsuid(0);
    setfsgid(0);
}

/* Runs in C, the new PID 1, still root of the host user namespace.
 * Order matters for safety: host trees to bind are captured as detached
 * mounts first, then we pivot into the domain's root, and only then resolve
 * mount points, so a symlink planted in a template (by a TemplateVM, say)
 * resolves inside the domain, never on the host. */
static void build_and_exec(struct domain *d) {
    char root[4096], opts[256];
    uid_t ns_root = (uid_t)d->uid_base;

    /* Nothing we mount may propagate back to the host. */
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, "make / private");

    PATHF(root, "%s/merged", d->run_dir);
    if (strcmp(d->root_mode, "persistent") == 0) {
        idmapped_bind(d, root, 0);
    } else {
        char lower[4096];
        PATHF(lower, "%s/lower", d->run_dir);
        idmapped_bind(d, lower, 1);
        /* The root's changes go to a tmpfs of root_upper_mib that exists in
         * this mount namespace only: bounded (a full root fails with ENOSPC
         * in this domain; its pages are charged to the domain's memory
         * cgroup as it writes them), never on the host's disk, and gone with
         * the domain, so the host never walks a tree the domain built there. */
        struct stat rst;
        if (stat(d->root_dir, &rst) != 0) die(errno, "stat root_dir", "%s", d->root_dir);
        char vol[4096], upper[4096], work[4096];
        PATHF(vol, "%s/volatile", d->run_dir);
        mkdir_p(vol, 0700, (uid_t)-1, (gid_t)-1);
        snprintf(opts, sizeof opts, "mode=0700,size=%lum", d->root_upper_mib);
        do_mount("tmpfs", vol, "tmpfs", MS_NOSUID | MS_NODEV, opts, "mount the root's upper (tmpfs)");
        /* The upper root gives the domain's / its owner and mode. */
        PATHF(upper, "%s/upper", vol);
        if (mkdir(upper, 0700) != 0 || chown(upper, ns_root + rst.st_uid, ns_root + rst.st_gid) != 0 ||
            chmod(upper, rst.st_mode & 07777) != 0)
            die(errno, "root upper", "%s", upper);
        PATHF(work, "%s/work", vol);
        if (mkdir(work, 0700) != 0) die(errno, "root work dir", "%s", work);
        /* Layers named relative to run_dir: overlayfs keeps the option
         * strings as given and shows them in the domain's mountinfo, so
         * absolute ones would tell the domain where the host keeps it. */
        if (chdir(d->run_dir) != 0) die(errno, "chdir run_dir", "%s", d->run_dir);
        const char *data = "lowerdir=lower,upperdir=volatile/upper,workdir=volatile/work";
        if (mount("overlay", "merged", "overlay", MS_NOSUID, data) != 0)
            die(errno, "mount overlay", "%s in %s", data, d->run_dir);
    }

    struct tree trees[2 + 2 * 64];
    int ntrees = 0;
    if (d->private_dir && *d->private_dir) {
        /* Qubes layout: the private volume is /rw, and /home is /rw/home. */
        capture_private(d, trees);
        ntrees = 2;
    }
    for (int ro = 1; ro >= 0; ro--) {
        for (int i = 0; ntrees < (int)(sizeof trees / sizeof trees[0]); i++) {
            const char *spec = get_nth(ro ? "bind_ro" : "bind_rw", i);
            if (!spec) break;
            const char *colon = strrchr(spec, ':');
            if (!colon || colon == spec || colon[1] != '/')
                die(EINVAL, ro ? "bind_ro" : "bind_rw", "expected HOST:/GUEST, got '%s'", spec);
            char *src = strndup(spec, (size_t)(colon - spec));
            trees[ntrees++] = capture(src, colon + 1, ro, ro ? "bind_ro" : "bind_rw");
            free(src);
        }
    }

    /* pivot_root(".", ".") stacks the old root under the new one; detaching
     * it leaves no path back to the host file system. */
    if (chdir(root) != 0) die(errno, "chdir new root", "%s", root);
    if (syscall(SYS_pivot_root, ".", ".") != 0) die(errno, "pivot_root", "%s", root);
    if (umount2(".", MNT_DETACH) != 0) die(errno, "detach old root", NULL);
    if (chdir("/") != 0) die(errno, "chdir /", NULL);

    mountpoint("/proc", 0555, ns_root);
    do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "mount /proc");
    mountpoint("/dev", 0755, ns_root);
    make_dev(ns_root);
    mountpoint("/tmp", 01777, ns_root);
    snprintf(opts, sizeof opts, "mode=1777,size=%lum,uid=%u,gid=%u", d->volatile_mib, ns_root, ns_root);
    do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts, "mount /tmp");
    mountpoint("/run", 0755, ns_root);
    snprintf(opts, sizeof opts, "mode=0755,size=16m,uid=%u,gid=%u", ns_root, ns_root);
    do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, opts, "mount /run");
    for (int i = 0; i < ntrees; i++) attach(&trees[i], ns_root);

    if (sethostname(d->hostname, strlen(d->hostname)) != 0) die(errno, "sethostname", "%s", d->hostname);
    loopback_up();

    /* Enter the domain's user namespace and become its root: uid_base on the
     * host, with capabilities over this user namespace only. */
    if (setns(d->userns_fd, CLONE_NEWUSER) != 0) die(errno, "enter user namespace", NULL);
    close(d->userns_fd);
    if (setgroups(0, NULL) != 0) die(errno, "setgroups", NULL);
    if (setresgid(0, 0, 0) != 0) die(errno, "setresgid", "0 in the domain (%lu on the host)", d->uid_base);
    if (setresuid(0, 0, 0) != 0) die(errno, "setresuid", "0 in the domain (%lu on the host)", d->uid_base);

    /* Open files per process: with pids.max this bounds the domain's share
     * of the host's fs.file-max. Lowered here (allowed to anyone); raising
     * it again needs CAP_SYS_RESOURCE in the host's user namespace. */
    struct rlimit nofile = {d->nofile_max, d->nofile_max};
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) die(errno, "setrlimit", "RLIMIT_NOFILE %lu", d->nofile_max);

    /* Its own session: no terminal signals from the host's session. */
    if (setsid() < 0) die(errno, "setsid", NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(errno, "no_new_privs", NULL);

    /* argv and environment, prepared before the filter goes in. */
    char *argv[130];
    int argc = 0;
    argv[argc++] = (char *)d->init;
    for (int i = 0; argc < 129; i++) {
        const char *a = get_nth("arg", i);
        if (!a) break;
        argv[argc++] = (char *)a;
    }
    argv[argc] = NULL;
    char *envp[130];
    int envc = 0;
    for (int i = 0; envc < 129; i++) {
        const char *e = get_nth("env", i);
        if (!e) break;
        envp[envc++] = (char *)e;
    }
    envp[envc] = NULL;

    if (d->seccomp) {
        int rc = seccomp_load(d->seccomp);
        if (rc < 0) die(-rc, "load seccomp filter", NULL);
    }
    execve(d->init, argv, envp);
    die(errno, "exec init", "%s", d->init);
}

int main(void) {
    /* Everything inherited beyond our protocol fds closes at exec. */
    close_range(SPEC_FD, ~0U, CLOSE_RANGE_CLOEXEC);

    /* Read the spec. */
    size_t cap = 16384, len = 0;
    spec_buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) spec_buf = realloc(spec_buf, cap *= 2);
        if (!spec_buf) die(ENOMEM, "read spec", NULL);
        ssize_t r = read(SPEC_FD, spec_buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(errno, "read spec", "fd %d", SPEC_FD);
        if (r == 0) break;
        len += (size_t)r;
    }
    spec_buf[len] = '\0';
    close(SPEC_FD);
    for (size_t off = 0; off < len && item_count < MAX_ITEMS;) {
        size_t l = strlen(spec_buf + off);
        if (l) items[item_count++] = spec_buf + off;
        off += l + 1;
    }

    struct domain d = {0};
    domain_name = get("name") ? get("name") : "?";
    d.root_mode = get("root_mode") ? get("root_mode") : "snapshot";
    d.root_dir = get("root_dir");
    d.run_dir = get("run_dir");
    d.private_dir = get("private_dir");
    d.init = get("init");
    d.hostname = get("hostname") ? get("hostname") : domain_name;
    d.uid_base = parse_ul("uid_base", 0);
    d.uid_count = parse_ul("uid_count", 65536);
    d.volatile_mib = parse_ul("volatile_mib", 256);
    d.nofile_max = parse_ul("nofile_max", 1024);
    d.root_upper_mib = parse_ul("root_upper_mib", 10240);     /* Qubes' root size: 10 GiB */
    if (!d.root_dir || !d.run_dir || !d.init) die(EINVAL, "parse spec", "root_dir, run_dir and init are required");
    if (d.uid_base == 0) die(EINVAL, "parse spec", "uid_base must be > 0: the domain never runs as host root");
    d.seccomp = build_seccomp();

    /* Per-start scratch on the host; the plugin removes it at stop. */
    char p[4096];
    mkdir_p(d.run_dir, 0700, (uid_t)-1, (gid_t)-1);
    PATHF(p, "%s/merged", d.run_dir);
    mkdir_p(p, 0755, (uid_t)-1, (gid_t)-1);
    if (strcmp(d.root_mode, "snapshot") == 0) {
        struct stat st;
        if (stat(d.root_dir, &st) != 0) die(errno, "stat root_dir", "%s", d.root_dir);
        PATHF(p, "%s/lower", d.run_dir);
        mkdir_p(p, 0755, (uid_t)-1, (gid_t)-1);
    } else if (strcmp(d.root_mode, "persistent") != 0) {
        die(EINVAL, "parse spec", "root_mode must be snapshot or persistent, got '%s'", d.root_mode);
    }
    if (d.private_dir && *d.private_dir) {
        /* The private volume belongs to the domain's root, the guest's 0 on
         * disk (it is idmapped): created if missing, and its top directory
         * (re)owned by 0 at every start (a VM's guest may have changed it). */
        struct stat st;
        if (lstat(d.private_dir, &st) != 0) {
            mkdir_p(d.private_dir, 0755, (uid_t)-1, (gid_t)-1);
        } else if (!S_ISDIR(st.st_mode)) {
            die(ENOTDIR, "private_dir", "%s (not a directory, or a symlink)", d.private_dir);
        } else if (st.st_uid != 0 || st.st_gid != 0) {
            if (lchown(d.private_dir, 0, 0) != 0) die(errno, "chown private_dir", "%s", d.private_dir);
        }
    }

    /* Join the domain's cgroups (created and limited by the plugin) before
     * the clone: the cgroup namespace of init is rooted at them. */
    char self[24];
    snprintf(self, sizeof self, "%d", getpid());
    for (int i = 0;; i++) {
        const char *dir = get_nth("cgroup", i);
        if (!dir) break;
        PATHF(p, "%s/cgroup.procs", dir);
        write_file(p, self, "join cgroup");
    }

    d.userns_fd = make_userns(&d);

    int st[2];
    if (pipe2(st, O_CLOEXEC) != 0) die(errno, "status pipe", NULL);
    /* CLONE_PARENT: init becomes the host process's child, so the host reaps
     * it and sees its exit status; we exit right after its exec. */
    long flags = CLONE_PARENT | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                 CLONE_NEWCGROUP | SIGCHLD;
    pid_t child = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
    if (child < 0) die(errno, "clone domain init", "pid, mount, net, ipc, uts, cgroup namespaces");
    if (child == 0) {
        close(st[0]);
        report_fd = st[1];
        build_and_exec(&d);
        _exit(127);
    }
    close(st[1]);
    close(d.userns_fd);

    /* EOF without a line: init exec'd (the pipe is close-on-exec). */
    char buf[1200];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(st[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof buf - 1) break;
    }
    buf[got] = '\0';
    char line[1300];
    int n;
    if (got > 0 && strncmp(buf, "err -1 ", 7) == 0)
        n = snprintf(line, sizeof line, "err %d %s", child, buf + 7); /* the caller reaps the child */
    else
        n = snprintf(line, sizeof line, "ok %d\n", child);
    if (n > (int)sizeof line - 1) n = sizeof line - 1;
    ssize_t w = write(STATUS_FD, line, (size_t)n);
    (void)w;
    return 0;
}
