/*
 * filecopy_internal.h - what the files of the filecopy add-on share.
 *
 *   filecopy.c        entry, description, and which function serves a call
 *   copy_command.c    ody-copy / ody-move: options, the call, the verdict
 *   pack.c            walking the files given and writing the stream
 *   stream_writer.c   the sender's buffered, CRC-summing output
 *   progress.c        the --progress line
 *   remove_tree.c     ody-move's removal of the originals
 *   receive_service.c qubes.Filecopy: incoming directory, child, reply
 *   incoming_usage.c  what ~/QubesIncoming already holds (per-receiver quota)
 *   confine.c         locking the unpacking child into the incoming dir
 *   landlock.c        the same where chroot and namespaces are refused
 *   syscall_filter.c  the system calls left to the unpacking child
 *   unpack.c          parsing the stream and landing entries (in the child)
 *   stream_reader.c   the receiver's buffered, CRC-summing input
 *   names.c           file-name and link-target rules (both sides)
 *   crc32.c           CRC-32 (IEEE 802.3), table driven
 *
 * Data from the other domain is `untrusted_*` until a check in names.c or
 * unpack.c has passed.
 */
#ifndef FILECOPY_INTERNAL_H
#define FILECOPY_INTERNAL_H

#include "addon_common.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define FC_SERVICE "qubes.Filecopy"
#define FC_ALL_NAMES_ARG "allow-all-names"

/* ---- the wire format (Qubes qrexec-lib, host byte order) */

/* One entry: this header, namelen bytes of name (with its NUL), then
 * filelen bytes (file data, or the link target; nothing for a directory).
 * namelen == 0 ends the stream. */
struct fc_file_header {
    uint32_t namelen;
    uint32_t mode;
    uint64_t filelen;
    uint32_t atime;
    uint32_t atime_nsec;
    uint32_t mtime;
    uint32_t mtime_nsec;
};

/* The receiver's answer: 0 or an errno value, and the CRC-32 of every
 * byte it read. When error_code != 0 it is followed by a u32 length and
 * that many bytes of the last name it processed (no NUL). */
struct fc_result_header {
    uint32_t error_code;
    uint32_t pad;
    uint64_t crc32;
};

_Static_assert(sizeof(struct fc_file_header) == 32, "file_header is 32 bytes on the wire");
_Static_assert(sizeof(struct fc_result_header) == 16, "result_header is 16 bytes on the wire");

/* A name, NUL included, is at most this long (Qubes' MAX_PATH_LENGTH). */
#define FC_MAX_NAME 16384

/* Big transfers: fewer system calls, no per-byte work outside the CRC. */
#define FC_IO_BUFFER (1024 * 1024)

/* ---- crc32.c */

/* zlib-compatible: start with 0, feed pieces in order. */
uint32_t fc_crc32(uint32_t crc, const void *data, size_t size);

/* ---- names.c */

/* Checks a path name from the stream (len bytes, no NUL inside): relative,
 * no empty / "." / ".." components, valid UTF-8, no control characters,
 * and (unless allow_all) only characters of the allow-list. 0, or an
 * errno value with *why set to a static reason. */
int fc_check_name(const char *name, size_t len, int allow_all, const char **why);

/* Checks a symbolic link `name` -> `target`: never at top level; the
 * target relative, its ".." only leading and never climbing out of the
 * link's top-level entry; same character rules as names. 0 or errno. */
int fc_check_link(const char *name, const char *target, size_t target_len, int allow_all, const char **why);

/* 1 if `s` has a character outside the default allow-list (a sender then
 * calls qubes.Filecopy+allow-all-names), else 0. */
int fc_needs_all_names(const char *s, size_t len);

/* Writes `s` with anything unprintable as '?', for one-line messages
 * about names that came from elsewhere. */
void fc_printable(char *out, size_t out_size, const char *s, size_t len);

/* ---- stream_reader.c (receiver) */

#define FC_READER_SLOTS 4

struct fc_reader {
    int fd;
    unsigned char *buf;         /* the buffer being parsed: slots[used % SLOTS] */
    size_t size, pos, end;
    unsigned char *slots[FC_READER_SLOTS];
    uint64_t used;              /* buffers handed to the CRC so far (parser side) */
    /* shared with the CRC thread, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t worker;
    int threaded, quit;
    uint64_t retired, summed;
    size_t lens[FC_READER_SLOTS];
    uint32_t crc;               /* over every byte the parser consumed */
};

int fc_reader_init(struct fc_reader *r, int fd);
void fc_reader_free(struct fc_reader *r);
/* Exactly n bytes into dst: 0, or -1 (errno 0 = the stream ended). */
int fc_reader_exact(struct fc_reader *r, void *dst, size_t n);
/* Up to max bytes in place (*got > 0), valid until the next call: 0, or
 * -1 (errno 0 = ended). */
int fc_reader_chunk(struct fc_reader *r, size_t max, const unsigned char **data, size_t *got);
/* The CRC-32 of everything consumed; call once, at the end. */
uint32_t fc_reader_crc(struct fc_reader *r);

/* ---- stream_writer.c (sender) */

struct fc_writer {
    int fd;
    unsigned char *buf;
    size_t size, len;
    uint32_t crc;           /* over every byte put */
    uint64_t total;         /* bytes put */
    int receiver_spoke;     /* the receiver answered early (it refused) or left */
};

int fc_writer_init(struct fc_writer *w, int fd);
void fc_writer_free(struct fc_writer *w);
int fc_writer_put(struct fc_writer *w, const void *data, size_t n);
/* Room for up to `want` bytes at the end of the buffer (flushing first if
 * less than `min` is free); fill it, then fc_writer_commit. */
int fc_writer_space(struct fc_writer *w, size_t min, unsigned char **room, size_t *room_size);
void fc_writer_commit(struct fc_writer *w, size_t n);
int fc_writer_flush(struct fc_writer *w);

/* ---- progress.c */

struct fc_progress {
    int enabled;
    int fd;
    const char *who;
    uint64_t bytes_total, files_total;
    uint64_t bytes_done, files_done;
    uint64_t last_ns;
    int shown;
};

void fc_progress_update(struct fc_progress *p, int force);
void fc_progress_end(struct fc_progress *p);

/* ---- pack.c (sender) */

struct fc_pack_totals {
    uint64_t bytes, files;
    int needs_all_names;
};

/* The first pass: checks every name and link the receiver would refuse,
 * counts what will be sent (the bytes of regular files only if
 * count_bytes: that costs a stat per file). 0, or -1 with a line on err_fd. */
int fc_pack_scan(const char *who, int argc, const char *const *paths, int follow_top, int count_bytes,
                 struct fc_pack_totals *t, int err_fd);

/* The second pass: the stream itself, end marker included. 0, or -1 with
 * a line on err_fd unless the receiver spoke first (w->receiver_spoke). */
int fc_pack_send(const char *who, int argc, const char *const *paths, int follow_top, struct fc_writer *w,
                 struct fc_progress *p, int err_fd);

/* The name an argument lands under: its last component ("dir/" -> "dir",
 * "." -> the current directory's name). 0, or -1 with a line on err_fd. */
int fc_top_name(const char *who, const char *path, char *out, size_t out_size, int err_fd);

/* ---- remove_tree.c */

/* Removes path (recursively, never following links). 0 or -1 with a line. */
int fc_remove_tree(const char *who, const char *path, int err_fd);

/* ---- confine.c, landlock.c */

/* In the unpacking child: from here on, the process can reach only `dir`
 * (an absolute path; dir_fd an open descriptor of it), has no
 * capabilities, and runs as owner_uid/owner_gid (when it started as root)
 * or as itself. *root_fd is the incoming directory to unpack into (dir_fd
 * itself under Landlock; under chroot dir_fd is closed, it would lead out).
 * 0, or -1 with a reason in why: the caller refuses the copy (fail closed). */
int fc_confine(const char *dir, int dir_fd, uid_t owner_uid, gid_t owner_gid, int *root_fd, char *why, size_t why_size);

/* Landlock: only dir_fd's tree, for unpacking; 0 or -1 with a reason. */
int fc_landlock_confine(int dir_fd, char *why, size_t size);

/* ---- syscall_filter.c */

/* From here on, only the system calls unpacking needs (others: EPERM), on
 * every thread of the process. 0, or -1 with a reason. */
int fc_filter_syscalls(char *why, size_t size);

/* ---- unpack.c */

struct fc_unpack_limits {
    int allow_all_names;
    uint64_t quota_bytes;           /* per copy */
    uint64_t quota_files;
    uint64_t incoming_bytes_left;   /* per receiver: incoming_quota_* minus what is there */
    uint64_t incoming_files_left;
    uint64_t min_free_percent;      /* of the receiving file system, kept free */
};

/* ---- incoming_usage.c */

/* Bytes (file data and link targets) and entries under `dir`, every
 * source's copies together, counting stopped once files passes
 * files_limit. 0, or -1 with a reason in why. */
int fc_incoming_usage(const char *dir, uint64_t files_limit, uint64_t *bytes, uint64_t *files, char *why,
                      size_t why_size);

struct fc_unpack_result {
    uint32_t code;              /* 0 or errno */
    uint32_t crc;
    char last_name[FC_MAX_NAME];
};

/* Reads the stream from in_fd into the directory root_fd (the confined
 * child's incoming directory). Fills *res; on error also writes one line
 * on err_fd. */
void fc_unpack(int in_fd, int root_fd, const struct fc_unpack_limits *lim, struct fc_unpack_result *res, const char *source,
               int err_fd);

/* ---- services and commands */

int32_t fc_receive_service(ody_addon *a, const ody_service_call *call, int32_t *exit_status);
int32_t fc_copy_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status);

#endif
