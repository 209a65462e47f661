/*
 * unpack.c - the receiving side of the stream, run by the confined child
 * (confine.c): root_fd is the incoming directory, nothing else is
 * reachable (it is "/" under chroot; under Landlock, the only tree the
 * process may touch).
 *
 * The rules, each one a defence against a sender that lies:
 *  - every name passes names.c before it touches the file system;
 *  - the parent directory of an entry is reached one component at a time
 *    with O_DIRECTORY|O_NOFOLLOW (a link can never redirect a path), and
 *    must have been sent before (nothing is created implicitly);
 *  - nothing is ever replaced, and a file has its name only once it is
 *    complete: it is written nameless (O_TMPFILE) and linked into place
 *    (linkat fails on an existing name), or where that is not possible
 *    created O_CREAT|O_EXCL|O_NOFOLLOW under a hidden temporary name and
 *    renamed with RENAME_NOREPLACE (or link()+unlink(), which cannot
 *    replace either); a directory only merges with a directory;
 *  - modes: & 0775, the setuid/setgid/sticky and world-write bits never
 *    land; directories keep u+rwx so the owner can always clean up;
 *  - nanoseconds above 999999999 are a protocol error, not clamped;
 *  - the quotas (bytes of data and links, count of entries: per copy, and
 *    per receiver as what ~/QubesIncoming had left at the start) and the
 *    free space kept on the file system are checked before an entry is
 *    written, the free space again every 8 MiB of a file (copies from
 *    other domains may be filling it at the same time); on any failure the
 *    entry in progress is removed, entries already complete stay (they
 *    were complete).
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define FILE_MODE_MASK 0775
#define DIR_MODE_FORCED 0700

struct unpack {
    struct fc_reader in;
    const struct fc_unpack_limits *lim;
    struct fc_unpack_result *res;
    const char *source;
    int err_fd;
    uint64_t bytes, files;
    int root_fd;
    /* The parent directory of the last entry, kept open: entries come
     * grouped by directory, so most need no path walk at all. */
    char parent[FC_MAX_NAME];
    size_t parent_len;
    int parent_fd;
    unsigned temp_counter;
    pid_t pid;
    int nameless;               /* O_TMPFILE + linkat works here */
    const char *why;            /* static reason of the failure */
};

static int fail(struct unpack *u, int code, const char *why) {
    if (u->res->code == 0) {
        u->res->code = (uint32_t)code;
        u->why = why;
    }
    return -1;
}

static int fail_errno(struct unpack *u, const char *what) {
    int e = errno != 0 ? errno : EIO;
    return fail(u, e, what);
}

/* The directory holding `name` (opened, cached), and its last component. */
static int parent_of(struct unpack *u, const char *name, size_t len, int *dir_fd, const char **leaf) {
    const char *slash = memrchr(name, '/', len);
    if (slash == NULL) {
        *dir_fd = u->root_fd;
        *leaf = name;
        return 0;
    }
    size_t plen = (size_t)(slash - name);
    *leaf = slash + 1;
    if (u->parent_fd >= 0 && plen == u->parent_len && memcmp(name, u->parent, plen) == 0) {
        *dir_fd = u->parent_fd;
        return 0;
    }
    if (u->parent_fd >= 0) close(u->parent_fd);
    u->parent_fd = -1;
    char comp[256];
    int cur = u->root_fd;
    size_t start = 0;
    while (start < plen) {
        const char *end = memchr(name + start, '/', plen - start);
        size_t clen = end != NULL ? (size_t)(end - (name + start)) : plen - start;
        memcpy(comp, name + start, clen);   /* names.c bounded components to 255 bytes */
        comp[clen] = 0;
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (cur != u->root_fd) close(cur);
        if (next < 0) {
            errno = e;
            if (e == ENOENT) return fail(u, ENOENT, "its directory was not sent before it");
            if (e == ELOOP || e == ENOTDIR) return fail(u, ENOTDIR, "a component of its directory is not a directory (a link or a file)");
            return fail_errno(u, "cannot open its directory");
        }
        cur = next;
        start += clen + 1;
    }
    memcpy(u->parent, name, plen);
    u->parent_len = plen;
    u->parent_fd = cur;
    *dir_fd = cur;
    return 0;
}

static int rename_noreplace(int dir_fd, const char *from, const char *to) {
    if (syscall(SYS_renameat2, dir_fd, from, dir_fd, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    /* The file system cannot rename without replacing: link() never replaces. */
    if (linkat(dir_fd, from, dir_fd, to, 0) != 0) return -1;
    return unlinkat(dir_fd, from, 0);
}

/* The receiving file system keeps min_free_percent free: `more` bytes are
 * about to be written. */
static int check_free_space(struct unpack *u, uint64_t more) {
    if (addon_fs_has_room(u->root_fd, more, u->lim->min_free_percent)) return 0;
    return fail(u, ENOSPC, "the receiving file system would have less free space than min_free_percent keeps");
}

static int check_quota(struct unpack *u, uint64_t bytes) {
    if (u->files >= u->lim->quota_files) return fail(u, EDQUOT, "the copy has more entries than quota_files allows");
    if (bytes > u->lim->quota_bytes - u->bytes) return fail(u, EDQUOT, "the copy is larger than quota_bytes allows");
    if (u->files >= u->lim->incoming_files_left)
        return fail(u, EDQUOT, "QubesIncoming would hold more entries than incoming_quota_files allows");
    if (bytes > u->lim->incoming_bytes_left - u->bytes)
        return fail(u, EDQUOT, "QubesIncoming would hold more bytes than incoming_quota_bytes allows");
    return check_free_space(u, bytes);
}

static void entry_times(const struct fc_file_header *h, struct timespec ts[2]) {
    ts[0].tv_sec = h->atime;
    ts[0].tv_nsec = h->atime_nsec;
    ts[1].tv_sec = h->mtime;
    ts[1].tv_nsec = h->mtime_nsec;
}

/* Dirty data handed to the disk while the stream is still arriving: the
 * syncfs before the status then waits for little, instead of writing the
 * whole copy after it (disk and stream overlap rather than add up). Only a
 * hint: SYNC_FILE_RANGE_WRITE starts writeback (it may wait for room in the
 * device queue, never for the data); a failure changes nothing. */
#define WRITEBACK_STEP (8u << 20)

static void start_writeback(int fd, uint64_t from, uint64_t len) {
    if (len > 0) (void)sync_file_range(fd, (off64_t)from, (off64_t)len, SYNC_FILE_RANGE_WRITE);
}

/* The data of a regular file, into the temporary file fd. */
static int copy_data(struct unpack *u, int fd, uint64_t size) {
    uint64_t written = 0, flushed = 0;
    while (size > 0) {
        const unsigned char *p;
        size_t got;
        size_t want = size < (uint64_t)FC_IO_BUFFER ? (size_t)size : FC_IO_BUFFER;
        if (fc_reader_chunk(&u->in, want, &p, &got) != 0) {
            if (errno == 0) return fail(u, EPROTO, "the stream ended inside its data");
            return fail_errno(u, "cannot read the stream");
        }
        if (write_all(fd, p, got) != 0) return fail_errno(u, "cannot write it");
        size -= got;
        written += got;
        if (written - flushed >= WRITEBACK_STEP) {
            start_writeback(fd, flushed, written - flushed);
            flushed = written;
            if (check_free_space(u, 0) != 0) return -1;
        }
    }
    /* The tail of a big file too; small files are left to syncfs, where one
     * flush covers thousands of them (a kick per small file only fills the
     * device queue, and SYNC_FILE_RANGE_WRITE then blocks). */
    if (flushed > 0) start_writeback(fd, flushed, written - flushed);
    return 0;
}

/* Below this size, a file that turns out to exist costs little to write
 * first: the no-replace link or rename is the guard, the early check only
 * saves time on big files (and costs a system call per small one). */
#define EARLY_EXISTS_CHECK_SIZE (1024 * 1024)

/* Whether files can be written nameless (O_TMPFILE) and linked into place
 * (linkat AT_EMPTY_PATH: kernels from 6.10 allow it to the opener without
 * privileges, the file system must support O_TMPFILE). Tried once on the
 * incoming directory itself; otherwise a hidden name and a rename. The
 * nameless way is faster (one directory entry, not two) and leaves
 * nothing behind whatever happens to this process.
 * ODYSSEY_FILECOPY_NAMED_TEMP=1 skips it (tests of the other way). */
static int probe_nameless(struct unpack *u) {
    const char *named = getenv("ODYSSEY_FILECOPY_NAMED_TEMP");
    if (named != NULL && strcmp(named, "1") == 0) return 0;
    int fd = openat(u->root_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    char probe[64];
    snprintf(probe, sizeof probe, ".ody-incoming-probe.%ld", (long)u->pid);
    int ok = linkat(fd, "", u->root_fd, probe, AT_EMPTY_PATH) == 0;
    close(fd);
    if (ok) unlinkat(u->root_fd, probe, 0);
    return ok;
}

/* Where the data goes before it has a name: *fd, and *temp the hidden
 * name (empty when nameless). 0, or -1 (failed). */
static int create_hidden(struct unpack *u, int dir_fd, mode_t mode, int *fd, char temp[64]) {
    temp[0] = 0;
    if (u->nameless) {
        *fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
        if (*fd >= 0) return 0;
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fail_errno(u, "cannot create it");
        u->nameless = 0;
    }
    for (int tries = 0; tries < 100; tries++) {
        snprintf(temp, 64, ".ody-incoming.%ld.%u", (long)u->pid, u->temp_counter++);
        *fd = openat(dir_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (*fd >= 0) return 0;
        if (errno != EEXIST) return fail_errno(u, "cannot create it");
    }
    return fail(u, EEXIST, "cannot find a free temporary name");
}

/* Gives the complete file its name, never replacing anything. */
static int publish(struct unpack *u, int dir_fd, int fd, const char *temp, const char *leaf) {
    int rc = temp[0] == 0 ? linkat(fd, "", dir_fd, leaf, AT_EMPTY_PATH) : rename_noreplace(dir_fd, temp, leaf);
    if (rc == 0) return 0;
    if (errno == EEXIST) return fail(u, EEXIST, "it already exists (nothing is overwritten)");
    return fail_errno(u, "cannot move it into place");
}

static int land_file(struct unpack *u, const struct fc_file_header *h, const char *name, size_t len) {
    int dir_fd;
    const char *leaf;
    if (check_quota(u, h->filelen) != 0 || parent_of(u, name, len, &dir_fd, &leaf) != 0) return -1;
    struct stat st;
    if (h->filelen >= EARLY_EXISTS_CHECK_SIZE && fstatat(dir_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return fail(u, EEXIST, "it already exists (nothing is overwritten)");
    /* Created with its final mode (umask is 0 here): the descriptor is
     * writable whatever the mode, and no fchmod is needed afterwards. */
    char temp[64];
    int fd;
    if (create_hidden(u, dir_fd, h->mode & FILE_MODE_MASK, &fd, temp) != 0) return -1;
    u->files++;
    u->bytes += h->filelen;
    struct timespec ts[2];
    entry_times(h, ts);
    int ok = copy_data(u, fd, h->filelen) == 0;
    if (ok && futimens(fd, ts) != 0) ok = fail_errno(u, "cannot set its times") == 0;
    if (ok && publish(u, dir_fd, fd, temp, leaf) != 0) ok = 0;
    if (close(fd) != 0 && ok) {
        fail_errno(u, "cannot write it");
        unlinkat(dir_fd, leaf, 0);   /* named, but its data did not make it */
        ok = 0;
    }
    if (!ok && temp[0] != 0) unlinkat(dir_fd, temp, 0);   /* the entry in progress never becomes visible */
    return ok ? 0 : -1;
}

static int land_directory(struct unpack *u, const struct fc_file_header *h, const char *name, size_t len) {
    int dir_fd;
    const char *leaf;
    if (parent_of(u, name, len, &dir_fd, &leaf) != 0) return -1;
    int fd = openat(dir_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* First appearance: made private; the mode and times come with the
         * second appearance, after the contents. */
        if (check_quota(u, 0) != 0) return -1;
        if (mkdirat(dir_fd, leaf, DIR_MODE_FORCED) != 0) return fail_errno(u, "cannot create the directory");
        u->files++;
        return 0;
    }
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR) return fail(u, EEXIST, "it already exists and is not a directory");
        return fail_errno(u, "cannot open the directory");
    }
    struct timespec ts[2];
    entry_times(h, ts);
    int rc = 0;
    if (fchmod(fd, (h->mode & FILE_MODE_MASK) | DIR_MODE_FORCED) != 0 || futimens(fd, ts) != 0)
        rc = fail_errno(u, "cannot set the directory's mode or times");
    close(fd);
    return rc;
}

static int land_link(struct unpack *u, const struct fc_file_header *h, const char *name, size_t len) {
    if (h->filelen >= FC_MAX_NAME) return fail(u, ENAMETOOLONG, "its link target is too long");
    char untrusted_target[FC_MAX_NAME];
    size_t tlen = (size_t)h->filelen;
    if (fc_reader_exact(&u->in, untrusted_target, tlen) != 0)
        return errno == 0 ? fail(u, EPROTO, "the stream ended inside its link target") : fail_errno(u, "cannot read the stream");
    untrusted_target[tlen] = 0;
    int rc = memchr(untrusted_target, 0, tlen) != NULL ? EINVAL : 0;
    if (rc != 0) return fail(u, rc, "its link target contains a NUL byte");
    rc = fc_check_link(name, untrusted_target, tlen, u->lim->allow_all_names, &u->why);
    if (rc != 0) return fail(u, rc, u->why);
    const char *target = untrusted_target;
    int dir_fd;
    const char *leaf;
    if (check_quota(u, tlen) != 0 || parent_of(u, name, len, &dir_fd, &leaf) != 0) return -1;
    if (symlinkat(target, dir_fd, leaf) != 0)
        return errno == EEXIST ? fail(u, EEXIST, "it already exists (nothing is overwritten)") : fail_errno(u, "cannot create the link");
    u->files++;
    u->bytes += tlen;
    struct timespec ts[2];
    entry_times(h, ts);
    (void)utimensat(dir_fd, leaf, ts, AT_SYMLINK_NOFOLLOW);   /* cosmetic: some file systems keep no link times */
    return 0;
}

/* One entry after its header; 1 at the end marker, 0 done, -1 failed. */
static int one_entry(struct unpack *u) {
    struct fc_file_header untrusted_hdr;
    if (fc_reader_exact(&u->in, &untrusted_hdr, sizeof untrusted_hdr) != 0)
        return errno == 0 ? fail(u, EPROTO, "the stream ended before its end marker") : fail_errno(u, "cannot read the stream");
    if (untrusted_hdr.namelen == 0) return 1;
    if (untrusted_hdr.namelen > FC_MAX_NAME) return fail(u, ENAMETOOLONG, "a name is longer than 16384 bytes");
    char *untrusted_name = u->res->last_name;
    size_t nlen = untrusted_hdr.namelen;
    if (fc_reader_exact(&u->in, untrusted_name, nlen) != 0) {
        untrusted_name[0] = 0;
        return errno == 0 ? fail(u, EPROTO, "the stream ended inside a name") : fail_errno(u, "cannot read the stream");
    }
    if (untrusted_name[nlen - 1] != 0 || strlen(untrusted_name) != nlen - 1) {
        untrusted_name[nlen - 1] = 0;
        return fail(u, EINVAL, "its name is not one NUL-terminated string");
    }
    int rc = fc_check_name(untrusted_name, nlen - 1, u->lim->allow_all_names, &u->why);
    if (rc != 0) return fail(u, rc, u->why);
    if (untrusted_hdr.atime_nsec > 999999999u || untrusted_hdr.mtime_nsec > 999999999u)
        return fail(u, EINVAL, "its time has more than 999999999 nanoseconds");
    const struct fc_file_header *h = &untrusted_hdr;   /* the fields are now in range */
    const char *name = untrusted_name;
    switch (h->mode & S_IFMT) {
    case S_IFREG: return land_file(u, h, name, nlen - 1);
    case S_IFDIR:
        if (h->filelen != 0) return fail(u, EINVAL, "it is a directory with data");
        return land_directory(u, h, name, nlen - 1);
    case S_IFLNK: return land_link(u, h, name, nlen - 1);
    default: return fail(u, EINVAL, "it is neither a file, a directory nor a symbolic link");
    }
}

void fc_unpack(int in_fd, int root_fd, const struct fc_unpack_limits *lim, struct fc_unpack_result *res, const char *source,
               int err_fd) {
    struct unpack u;
    memset(&u, 0, sizeof u);
    memset(res, 0, sizeof *res);
    u.lim = lim;
    u.res = res;
    u.source = source;
    u.err_fd = err_fd;
    u.parent_fd = -1;
    u.pid = getpid();
    umask(0);   /* modes are exactly the masked ones below */
    u.root_fd = root_fd;
    u.nameless = probe_nameless(&u);
    char filter_why[256];
    if (fc_reader_init(&u.in, in_fd) != 0) fail(&u, ENOMEM, "out of memory");
    else if (fc_filter_syscalls(filter_why, sizeof filter_why) != 0) fail(&u, EPERM, filter_why);
    else
        while (one_entry(&u) == 0) {}
    res->crc = fc_reader_crc(&u.in);
    if (res->code != 0) {
        char shown[512];
        fc_printable(shown, sizeof shown, res->last_name, strlen(res->last_name));
        say(err_fd, "qubes.Filecopy: refused the copy from %s at \"%s\": %s (%s)", source, shown,
            u.why != NULL ? u.why : "error", strerror((int)res->code));
    }
    if (u.parent_fd >= 0) close(u.parent_fd);
    fc_reader_free(&u.in);
}
