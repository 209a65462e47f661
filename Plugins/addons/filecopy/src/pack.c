/*
 * pack.c - the sender's walk over the files given, done twice: a scan
 * (counts for --progress, every name and link checked with the
 * receiver's own rules in names.c, so a refusal is reported before
 * anything is sent) and the send (the stream, end marker included).
 *
 * Order, as the receiver expects: a directory's header, its contents, its
 * header again (the receiver creates it private first and applies mode
 * and times at the second one, after its contents changed it). Links
 * inside the tree travel as links; a top-level argument that is a link is
 * followed for ody-copy (like cp) and refused for ody-move (which would
 * delete the link, not what was sent).
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct walk {
    const char *who;
    int err_fd;
    int follow_top;
    int sending;
    struct fc_writer *w;
    struct fc_progress *p;
    struct fc_pack_totals *t;
    const char *arg;            /* the argument being walked, for messages */
    size_t top_len;             /* length of its top name in `name` */
    char name[FC_MAX_NAME];     /* the name on the wire */
    size_t len;
};

/* The local path of the current entry, for a message. */
static void local_path(struct walk *wk, char *out, size_t size) {
    char shown[1024];
    fc_printable(shown, sizeof shown, wk->name + wk->top_len, wk->len - wk->top_len);
    char arg[1024];
    fc_printable(arg, sizeof arg, wk->arg, strlen(wk->arg));
    snprintf(out, size, "%s%s", arg, shown);
}

static int complain(struct walk *wk, const char *fmt, const char *detail) {
    if (wk->sending && wk->w->receiver_spoke) return -1;   /* the receiver's reason is the one to show */
    char path[2100], what[512];
    local_path(wk, path, sizeof path);
    snprintf(what, sizeof what, fmt, detail);
    say(wk->err_fd, "%s: %s: %s", wk->who, path, what);
    return -1;
}

static int put_header(struct walk *wk, const struct stat *st, uint64_t filelen) {
    struct fc_file_header h = {
        .namelen = (uint32_t)wk->len + 1,
        .mode = (uint32_t)st->st_mode,
        .filelen = filelen,
        .atime = (uint32_t)st->st_atim.tv_sec,
        .atime_nsec = (uint32_t)st->st_atim.tv_nsec,
        .mtime = (uint32_t)st->st_mtim.tv_sec,
        .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
    };
    if (fc_writer_put(wk->w, &h, sizeof h) != 0 || fc_writer_put(wk->w, wk->name, wk->len + 1) != 0)
        return complain(wk, "cannot send: %s", strerror(errno));
    return 0;
}

static int send_file(struct walk *wk, int dir_fd, const char *leaf, int top) {
    /* O_NONBLOCK: a fifo swapped in since readdir must not hang the open
     * (it is then refused below); a regular file reads the same. */
    int fd = openat(dir_fd, leaf, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (top && wk->follow_top ? 0 : O_NOFOLLOW));
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return complain(wk, "cannot open: %s", strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return complain(wk, "%s", "changed into something else than a file while being sent");
    }
    if (st.st_size >= FC_IO_BUFFER) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = put_header(wk, &st, (uint64_t)st.st_size);
    uint64_t left = (uint64_t)st.st_size;
    while (rc == 0 && left > 0) {
        unsigned char *room;
        size_t room_size;
        if (fc_writer_space(wk->w, 64 * 1024, &room, &room_size) != 0) {
            rc = complain(wk, "cannot send: %s", strerror(errno));
            break;
        }
        size_t want = left < room_size ? (size_t)left : room_size;
        ssize_t n = read(fd, room, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = complain(wk, "cannot read: %s", strerror(errno));
        else if (n == 0) rc = complain(wk, "%s", "shrank while being sent (the copy is incomplete)");
        else {
            fc_writer_commit(wk->w, (size_t)n);
            left -= (uint64_t)n;
            wk->p->bytes_done += (uint64_t)n;
            fc_progress_update(wk->p, 0);
        }
    }
    close(fd);
    if (rc == 0) wk->p->files_done++;
    return rc;
}

static int walk_entry(struct walk *wk, int dir_fd, const char *leaf, unsigned type, const struct stat *st, int top);

/* The type readdir gave (DT_UNKNOWN on some file systems). The walk needs
 * a stat only where it uses one: sizes for --progress, mode and times for
 * headers; a regular file's own fstat after open is the one that counts. */
static int needs_stat(const struct walk *wk, unsigned type) {
    if (type == DT_UNKNOWN) return 1;
    if (type == DT_REG) return !wk->sending && wk->p->enabled;
    if (type == DT_DIR || type == DT_LNK) return wk->sending;
    return 1;
}

static unsigned type_of(const struct stat *st) {
    if (S_ISREG(st->st_mode)) return DT_REG;
    if (S_ISDIR(st->st_mode)) return DT_DIR;
    if (S_ISLNK(st->st_mode)) return DT_LNK;
    return DT_UNKNOWN;
}

static int walk_directory(struct walk *wk, int dir_fd, const char *leaf, const struct stat *st, int top) {
    if (wk->sending && put_header(wk, st, 0) != 0) return -1;
    int fd = openat(dir_fd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (top && wk->follow_top ? 0 : O_NOFOLLOW));
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) close(fd);
        return complain(wk, "cannot open the directory: %s", strerror(errno));
    }
    int rc = 0;
    size_t len = wk->len;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0) rc = complain(wk, "cannot read the directory: %s", strerror(errno));
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t nlen = strlen(e->d_name);
        if (len + 1 + nlen >= sizeof wk->name) {
            rc = complain(wk, "%s", "a name inside is longer than 16383 bytes");
            break;
        }
        wk->name[len] = '/';
        memcpy(wk->name + len + 1, e->d_name, nlen + 1);
        wk->len = len + 1 + nlen;
        struct stat cst;
        unsigned type = e->d_type;
        int have_stat = 0;
        if (needs_stat(wk, type)) {
            if (fstatat(dirfd(d), e->d_name, &cst, AT_SYMLINK_NOFOLLOW) != 0) rc = complain(wk, "cannot stat: %s", strerror(errno));
            have_stat = 1;
            type = type_of(&cst);
        }
        if (rc == 0) rc = walk_entry(wk, dirfd(d), e->d_name, type, have_stat ? &cst : NULL, 0);
        wk->len = len;
        wk->name[len] = 0;
        if (rc != 0) break;
    }
    closedir(d);
    if (rc == 0 && wk->sending) rc = put_header(wk, st, 0);
    return rc;
}

static int walk_link(struct walk *wk, int dir_fd, const char *leaf, const struct stat *st) {
    char target[FC_MAX_NAME];
    ssize_t n = readlinkat(dir_fd, leaf, target, sizeof target);
    if (n < 0) return complain(wk, "cannot read the link: %s", strerror(errno));
    if ((size_t)n >= sizeof target) return complain(wk, "%s", "the link's target is too long");
    const char *why;
    if (fc_check_link(wk->name, target, (size_t)n, 1, &why) != 0)
        return complain(wk, "cannot be sent: it %s (the receiver refuses it)", why);
    if (!wk->sending) {
        wk->t->needs_all_names |= fc_needs_all_names(target, (size_t)n);
        wk->t->bytes += (uint64_t)n;
        wk->t->files++;
        return 0;
    }
    if (put_header(wk, st, (uint64_t)n) != 0 || fc_writer_put(wk->w, target, (size_t)n) != 0)
        return complain(wk, "cannot send: %s", strerror(errno));
    wk->p->files_done++;
    wk->p->bytes_done += (uint64_t)n;
    fc_progress_update(wk->p, 0);
    return 0;
}

/* st may be NULL where needs_stat() said it is not needed. */
static int walk_entry(struct walk *wk, int dir_fd, const char *leaf, unsigned type, const struct stat *st, int top) {
    if (!wk->sending) {
        const char *why;
        if (fc_check_name(wk->name, wk->len, 1, &why) != 0)
            return complain(wk, "cannot be sent: the name %s (the receiver refuses it)", why);
        wk->t->needs_all_names |= fc_needs_all_names(wk->name, wk->len);
    }
    if (type == DT_DIR) return walk_directory(wk, dir_fd, leaf, st, top);
    if (type == DT_LNK) return walk_link(wk, dir_fd, leaf, st);
    if (type == DT_REG) {
        if (wk->sending) return send_file(wk, dir_fd, leaf, top);
        wk->t->bytes += st != NULL ? (uint64_t)st->st_size : 0;
        wk->t->files++;
        return 0;
    }
    return complain(wk, "%s", "is a device, fifo or socket: only files, directories and symbolic links can be copied");
}

int fc_top_name(const char *who, const char *path, char *out, size_t out_size, int err_fd) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        say(err_fd, "%s: %s: path too long", who, path);
        return -1;
    }
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    const char *base = strrchr(buf, '/') != NULL ? strrchr(buf, '/') + 1 : buf;
    char resolved[PATH_MAX];
    if (base[0] == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        /* "." or "..": the directory's own name. */
        if (realpath(path, resolved) == NULL) {
            say(err_fd, "%s: %s: %s", who, path, strerror(errno));
            return -1;
        }
        base = strrchr(resolved, '/') + 1;
    }
    if (base[0] == 0) {
        say(err_fd, "%s: %s: cannot copy the root directory; name what is inside it", who, path);
        return -1;
    }
    if (snprintf(out, out_size, "%s", base) >= (int)out_size) {
        say(err_fd, "%s: %s: name too long", who, path);
        return -1;
    }
    return 0;
}

static int walk_top(struct walk *wk, const char *path) {
    if (fc_top_name(wk->who, path, wk->name, sizeof wk->name, wk->err_fd) != 0) return -1;
    wk->arg = path;
    wk->len = wk->top_len = strlen(wk->name);
    struct stat st;
    if ((wk->follow_top ? stat(path, &st) : lstat(path, &st)) != 0) return complain(wk, "%s", strerror(errno));
    if (S_ISLNK(st.st_mode))
        return complain(wk, "%s", "is a symbolic link: ody-move does not follow it (move what it points to, or use ody-copy)");
    return walk_entry(wk, AT_FDCWD, path, type_of(&st), &st, 1);
}

int fc_pack_scan(const char *who, int argc, const char *const *paths, int follow_top, int count_bytes,
                 struct fc_pack_totals *t, int err_fd) {
    static struct walk wk;
    struct fc_progress quiet = {0};
    quiet.enabled = count_bytes;   /* the scan only reads it to know whether sizes are wanted */
    memset(&wk, 0, sizeof wk);
    memset(t, 0, sizeof *t);
    wk.who = who;
    wk.err_fd = err_fd;
    wk.follow_top = follow_top;
    wk.t = t;
    wk.p = &quiet;
    for (int i = 0; i < argc; i++)
        if (walk_top(&wk, paths[i]) != 0) return -1;
    return 0;
}

int fc_pack_send(const char *who, int argc, const char *const *paths, int follow_top, struct fc_writer *w,
                 struct fc_progress *p, int err_fd) {
    static struct walk wk;
    struct fc_pack_totals unused;
    memset(&wk, 0, sizeof wk);
    wk.who = who;
    wk.err_fd = err_fd;
    wk.follow_top = follow_top;
    wk.sending = 1;
    wk.w = w;
    wk.p = p;
    wk.t = &unused;
    for (int i = 0; i < argc; i++)
        if (walk_top(&wk, paths[i]) != 0) return -1;
    struct fc_file_header end;
    memset(&end, 0, sizeof end);
    if (fc_writer_put(w, &end, sizeof end) != 0 || fc_writer_flush(w) != 0) {
        if (!w->receiver_spoke) say(err_fd, "%s: cannot send: %s", who, strerror(errno));
        return -1;
    }
    fc_progress_update(p, 1);
    return 0;
}
