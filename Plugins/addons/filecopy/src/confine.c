/*
 * confine.c - locks the unpacking child into the incoming directory before
 * it reads a single byte of the stream. If the parser has a bug, what it
 * can reach is the incoming directory and nothing else.
 *
 * The strongest confinement the kernel grants, in this order:
 *
 * Started as root (a service configured to run as root): a private mount
 * namespace if the kernel gives one (the directory bound over itself
 * nosuid,nodev,noexec), chroot, then the groups, gid and uid of HOME's
 * owner, then every capability dropped (HOME's owner may be root itself:
 * root without capabilities cannot leave a chroot).
 *
 * Not root (the normal case inside a domain): a user namespace mapping
 * only our own uid and gid, a mount namespace in it, the directory bound
 * over itself nosuid,nodev,noexec, chroot, capabilities dropped. Once the
 * namespace exists every further step is required.
 *
 * Where chroot or new namespaces are refused (an Odyssey native domain's
 * seccomp filter refuses both): Landlock (landlock.c), which an
 * unprivileged process applies to itself.
 *
 * If none is possible, the copy is refused: fail closed.
 * ODYSSEY_FILECOPY_CONFINEMENT=landlock skips the first two (tests use it
 * to exercise the Landlock path on a machine that has the others).
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

static int why_errno(char *why, size_t size, const char *what) {
    snprintf(why, size, "%s: %s", what, strerror(errno));
    return -1;
}

static int write_proc(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = write_all(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The flags a remount must keep: in a user namespace the kernel refuses
 * to drop read-only, atime and the other "locked" flags of the original. */
static unsigned long kept_flags(const char *dir) {
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(dir, &sv) != 0) return 0;
    if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

/* dir bound over itself, nosuid,nodev,noexec, in our own mount namespace. */
static int bind_restricted(const char *dir, char *why, size_t size) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return why_errno(why, size, "cannot make the mounts private");
    if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) != 0) return why_errno(why, size, "cannot bind the incoming directory");
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC | kept_flags(dir);
    if (mount(NULL, dir, NULL, flags, NULL) != 0) return why_errno(why, size, "cannot remount the incoming directory nosuid,nodev,noexec");
    return 0;
}

/* chroot into dir, after checking it is still the directory we made.
 * On success dir_fd is closed: an open descriptor of the directory
 * outside the chroot would lead back out ("..") of it. */
static int enter(const char *dir, int dir_fd, char *why, size_t size) {
    struct stat want, got;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return why_errno(why, size, "cannot open the incoming directory");
    if (fstat(dir_fd, &want) != 0 || fstat(fd, &got) != 0 || want.st_dev != got.st_dev || want.st_ino != got.st_ino) {
        close(fd);
        snprintf(why, size, "the incoming directory changed under us");
        errno = ESTALE;
        return -1;
    }
    int rc = fchdir(fd);
    close(fd);
    if (rc != 0) return why_errno(why, size, "cannot enter the incoming directory");
    if (chroot(".") != 0) return why_errno(why, size, "chroot");
    close(dir_fd);
    if (chdir("/") != 0) return why_errno(why, size, "chdir");
    return 0;
}

static int drop_capabilities(char *why, size_t size) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) != 0) return why_errno(why, size, "cannot drop capabilities");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return why_errno(why, size, "cannot set no_new_privs");
    return 0;
}

static int set_identity(uid_t uid, gid_t gid, char *why, size_t size) {
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
        return why_errno(why, size, "cannot take the identity of HOME's owner");
    return 0;
}

static int landlock_only(void) {
    const char *force = getenv("ODYSSEY_FILECOPY_CONFINEMENT");
    return force != NULL && strcmp(force, "landlock") == 0;
}

static int confine_as_root(const char *dir, int dir_fd, uid_t uid, gid_t gid, int *root_fd, char *why, size_t size) {
    char ignored[256];
    if (!landlock_only()) {
        /* Best effort as root: the chroot and the dropped privileges are
         * the confinement; the mount flags only add to it. */
        if (unshare(CLONE_NEWNS) != 0 || bind_restricted(dir, ignored, sizeof ignored) != 0) {}
        if (enter(dir, dir_fd, why, size) == 0) {
            if (set_identity(uid, gid, why, size) != 0 || drop_capabilities(why, size) != 0) return -1;
            *root_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            return *root_fd >= 0 ? 0 : why_errno(why, size, "cannot open the incoming directory");
        }
        if (errno != EPERM) return -1;
    }
    char chroot_why[256];
    snprintf(chroot_why, sizeof chroot_why, "%s", landlock_only() ? "not tried" : why);
    if (set_identity(uid, gid, why, size) != 0 || drop_capabilities(why, size) != 0) return -1;
    if (fc_landlock_confine(dir_fd, ignored, sizeof ignored) != 0) {
        snprintf(why, size, "chroot: %s; %s", chroot_why, ignored);
        return -1;
    }
    *root_fd = dir_fd;
    return 0;
}

static int confine_in_user_namespace(const char *dir, int dir_fd, int *root_fd, char *why, size_t size) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (landlock_only() || unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        char ns_why[128], ll_why[256];
        snprintf(ns_why, sizeof ns_why, "%s", landlock_only() ? "not tried" : strerror(errno));
        if (fc_landlock_confine(dir_fd, ll_why, sizeof ll_why) != 0) {
            snprintf(why, size, "no user namespace (%s) and %s", ns_why, ll_why);
            return -1;
        }
        *root_fd = dir_fd;
        return 0;
    }
    char map[64];
    if (write_proc("/proc/self/setgroups", "deny") != 0) return why_errno(why, size, "cannot write /proc/self/setgroups");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (write_proc("/proc/self/uid_map", map) != 0) return why_errno(why, size, "cannot write the uid map");
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (write_proc("/proc/self/gid_map", map) != 0) return why_errno(why, size, "cannot write the gid map");
    if (bind_restricted(dir, why, size) != 0) return -1;
    if (enter(dir, dir_fd, why, size) != 0) return -1;
    if (drop_capabilities(why, size) != 0) return -1;
    *root_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *root_fd >= 0 ? 0 : why_errno(why, size, "cannot open the incoming directory");
}

int fc_confine(const char *dir, int dir_fd, uid_t owner_uid, gid_t owner_gid, int *root_fd, char *why, size_t why_size) {
    *root_fd = -1;
    if (geteuid() == 0) return confine_as_root(dir, dir_fd, owner_uid, owner_gid, root_fd, why, why_size);
    return confine_in_user_namespace(dir, dir_fd, root_fd, why, why_size);
}
