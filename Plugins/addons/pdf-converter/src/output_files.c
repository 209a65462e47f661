/* output_files.c - see output_files.h. */
#define _GNU_SOURCE
#include "output_files.h"
#include "addon_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHY_SIZE 256

static int why_errno(char *why, const char *what, const char *path) {
    snprintf(why, WHY_SIZE, "%s %s: %s", what, path, strerror(errno));
    return -1;
}

/* Splits a path into its directory ("." if none) and its last component. */
static int split_path(const char *path, char *dir, size_t dsize, const char **base) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, dsize, ".");
        *base = path;
        return 0;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;  /* "/x.pdf": the root */
    if (n >= dsize) return -1;
    memcpy(dir, path, n);
    dir[n] = 0;
    *base = slash + 1;
    return 0;
}

static size_t pdf_suffix_len(const char *base) {
    size_t n = strlen(base);
    return n > 4 && strcasecmp(base + n - 4, ".pdf") == 0 ? 4 : 0;
}

int trusted_output_path(const char *input, char *out, size_t size, char *why) {
    char dir[PATH_MAX];
    const char *base = NULL;
    if (split_path(input, dir, sizeof dir, &base) != 0 || base[0] == 0) {
        snprintf(why, WHY_SIZE, "%s is not a file name", input);
        return -1;
    }
    int stem = (int)(strlen(base) - pdf_suffix_len(base));
    int n = strchr(input, '/') != NULL ? snprintf(out, size, "%s/%.*s.trusted.pdf", dir, stem, base)
                                       : snprintf(out, size, "%.*s.trusted.pdf", stem, base);
    if (n < 0 || (size_t)n >= size) {
        snprintf(why, WHY_SIZE, "the output name for %s is too long", input);
        return -1;
    }
    return 0;
}

int create_temp_beside(const char *final, char *tmp_path, size_t size, int *fd, char *why) {
    char dir[PATH_MAX];
    const char *base = NULL;
    if (split_path(final, dir, sizeof dir, &base) != 0) {
        snprintf(why, WHY_SIZE, "%s: name too long", final);
        return -1;
    }
    int n = strchr(final, '/') != NULL ? snprintf(tmp_path, size, "%s/.%s.XXXXXX", dir, base)
                                       : snprintf(tmp_path, size, ".%s.XXXXXX", base);
    if (n < 0 || (size_t)n >= size) {
        snprintf(why, WHY_SIZE, "%s: name too long", final);
        return -1;
    }
    *fd = mkostemp(tmp_path, O_CLOEXEC);
    if (*fd < 0) return why_errno(why, "cannot create a temporary file beside", final);
    return 0;
}

int set_default_mode(int fd, char *why) {
    mode_t mask = umask(077);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        snprintf(why, WHY_SIZE, "cannot set the output's mode: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int rename_no_replace(const char *from, const char *to) {
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    /* Filesystems without RENAME_NOREPLACE: link(2) never replaces either. */
    if (link(from, to) != 0) return -1;
    if (unlink(from) != 0) {
        int saved = errno;
        (void)unlink(to);
        errno = saved;
        return -1;
    }
    return 0;
}

static const char *home_dir(void) {
    const char *home = getenv("HOME");
    if (home != NULL && home[0] == '/') return home;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

/* Copies then removes: the archive may be on another filesystem (EXDEV).
 * -1 with errno EEXIST means "try the next name"; other failures set why. */
static int copy_then_unlink(const char *from, const char *to, char *why) {
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        if (errno == EEXIST) return -1;
        return why_errno(why, "cannot create", to);
    }
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int ok = in >= 0;
    char buf[65536];
    ssize_t n = 0;
    while (ok && (n = read_upto(in, buf, sizeof buf)) > 0)
        if (write_all(out, buf, (size_t)n) != 0) ok = 0;
    if (n < 0) ok = 0;
    int saved = errno;
    if (in >= 0) close(in);
    if (fsync(out) != 0 || close(out) != 0) {
        ok = 0;
        saved = errno;
    }
    if (ok && unlink(from) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        (void)unlink(to);
        snprintf(why, WHY_SIZE, "cannot move %s to %s: %s", from, to, strerror(saved));
        errno = EIO;
        return -1;
    }
    return 0;
}

/* The archive directory, created 0700 if missing; a symlink to a directory
 * the user set up is accepted, anything else not a directory is refused. */
static int archive_dir(char *dir, size_t size, char *why) {
    const char *home = home_dir();
    if (home == NULL) {
        snprintf(why, WHY_SIZE, "cannot archive the original: no home directory (HOME is unset)");
        return -1;
    }
    int n = snprintf(dir, size, "%s/%s", home, PDFC_ARCHIVE_DIR);
    if (n < 0 || (size_t)n >= size) {
        snprintf(why, WHY_SIZE, "cannot archive the original: home directory name too long");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return why_errno(why, "cannot create", dir);
    struct stat st;
    if (stat(dir, &st) != 0) return why_errno(why, "cannot use", dir);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, WHY_SIZE, "cannot archive the original: %s is not a directory", dir);
        return -1;
    }
    return 0;
}

#define ARCHIVE_SUFFIX_MAX 9999

int archive_original(const char *input, char *where, size_t size, char *why) {
    char dir[PATH_MAX];
    if (archive_dir(dir, sizeof dir, why) != 0) return -1;
    const char *base = strrchr(input, '/');
    base = base != NULL ? base + 1 : input;
    const char *dot = strrchr(base, '.');
    int stem = dot != NULL && dot != base ? (int)(dot - base) : (int)strlen(base);
    const char *ext = base + stem;
    for (int i = 0; i <= ARCHIVE_SUFFIX_MAX; i++) {
        int n = i == 0 ? snprintf(where, size, "%s/%s", dir, base)
                       : snprintf(where, size, "%s/%.*s.%d%s", dir, stem, base, i, ext);
        if (n < 0 || (size_t)n >= size) {
            snprintf(why, WHY_SIZE, "cannot archive %s: name too long", input);
            return -1;
        }
        if (rename_no_replace(input, where) == 0) return 0;
        if (errno == EEXIST) continue;
        if (errno != EXDEV) return why_errno(why, "cannot move the original into", dir);
        if (copy_then_unlink(input, where, why) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    snprintf(why, WHY_SIZE, "cannot archive %s: %d names in %s are taken", input, ARCHIVE_SUFFIX_MAX + 1, dir);
    return -1;
}
