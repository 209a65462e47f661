/*
 * open_in_vm_internal.h - what the files of the open-in-vm add-on share.
 *
 *   open_in_vm.c      entry, description, and which function serves a call
 *   open_command.c    ody-open-in-vm / ody-open-in-dvm (the client side)
 *   open_command_args.c   its help and arguments
 *   edited_copy.c     what comes back: received, compared, put in place
 *   open_service.c    qubes.OpenInVM (the domain side)
 *   url_service.c     qubes.OpenURL (the domain side)
 *   file_name.c       the 256-byte name block: built, parsed, sanitised
 *   program.c         finding and running the viewer / URL handler
 *   private_dir.c     the service's temporary directory, made and removed
 *   file_stream.c     copying and comparing file data
 */
#ifndef OPEN_IN_VM_INTERNAL_H
#define OPEN_IN_VM_INTERNAL_H

#include "addon_common.h"

#include <limits.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>

/* Qubes' wire format: the name travels in a fixed 256-byte block, NUL-padded;
 * this prefix on the name asks for a read-only copy. */
#define OPEN_NAME_BLOCK 256
#define OPEN_VIEW_ONLY_PREFIX "view-only-"

/* A URL line is bounded: anything longer is refused, not truncated. */
#define OPEN_URL_MAX 8192

#define OPEN_SERVICE "qubes.OpenInVM"
#define OPEN_URL_SERVICE "qubes.OpenURL"
#define OPEN_DEFAULT_PROGRAM "xdg-open"

/* ---- file_name.c */

/* Fills `block` with `base` (a basename, no '/'), prefixed for view-only.
 * 0, or -1 if it does not fit (the block keeps one NUL at least). */
int name_block_make(unsigned char block[OPEN_NAME_BLOCK], const char *base, int view_only);

/* Longest basename name_block_make accepts. */
size_t name_block_max_base(int view_only);

/* Validates the block the caller sent and writes the safe name into `name`
 * (characters outside [0-9A-Za-z._+@-] replaced by '_'); *view_only says
 * whether the prefix was there (it is not part of `name`). 0, or -1 with
 * *why set to a static reason. */
int name_block_parse(const unsigned char untrusted_block[OPEN_NAME_BLOCK], char name[OPEN_NAME_BLOCK],
                     int *view_only, const char **why);

/* ---- program.c */

/* `name` as configured: an absolute path, or a bare name looked up in PATH
 * (relative PATH entries are skipped). 0 and the path in `out`, or -1
 * (errno: ENOENT not found, EINVAL a relative path with '/', ENAMETOOLONG). */
int program_resolve(const char *name, char *out, size_t size);

/* Runs `path` with argv [path, arg] (no shell), stdio on /dev/null, and
 * waits for it. 0 and *status (its exit status, or 128+signal), or -1
 * (errno) if it could not be started. */
int program_run(const char *path, const char *arg, int *status);

/* ---- private_dir.c */

/* A fresh directory only this user can enter: $TMPDIR (if absolute) or
 * /tmp, then ody-open-XXXXXX, mode 0700. 0 or -1 (errno). */
int private_dir_create(char *path, size_t size);

/* Removes `path` and everything in it (never following symlinks), even if
 * the viewer left read-only entries. 0 or -1 (errno). */
int private_dir_remove(const char *path);

/* ---- file_stream.c */

/* Copies `in` to EOF into `out` and, if `copy` >= 0, into `copy` too.
 * With min_free_percent > 0, `out` is a file whose file system must keep
 * that much free (addon_fs_has_room, checked every STREAM_ROOM_STEP bytes).
 * 0 and *bytes, or -1: *failed_side is 0 when reading `in` failed, 1 when
 * writing failed (errno set either way), 2 when the room ran out. */
#define STREAM_ROOM_STEP (8u << 20)
int stream_copy(int in, int out, int copy, uint64_t min_free_percent, uint64_t *bytes, int *failed_side);

/* 1 if the two files (read from offset 0 with pread) have the same size and
 * bytes, 0 if they differ, -1 on a read error (errno). */
int files_same(int a, int b);

/* ---- open_command_args.c, edited_copy.c: the client's parts */

struct open_request {
    const char *command;   /* argv[0]: ody-open-in-vm or ody-open-in-dvm */
    const char *target;    /* a domain name or keyword (@dispvm...) */
    const char *file;      /* as the user typed it, for messages */
    int view_only;
    int out, err;          /* the user's stdout and stderr */
};

/* Parses argv after r->command and r->target (preset for ody-open-in-dvm).
 * -1 to go on; otherwise the exit status (help printed: 0, bad usage: 2). */
int open_command_parse(const ody_command_call *call, struct open_request *r);

/* The edited copy as it arrives: written to a temporary file beside the
 * original (made at the first byte, so an interrupted session leaves
 * nothing behind) and compared with the original on the way. */
struct edited_copy {
    const char *dir;               /* the original's directory; NULL: only count (view-only) */
    int original;                  /* read with pread */
    int fd;                        /* the temporary file, or -1 */
    char path[PATH_MAX + 32];
    uint64_t bytes;
    uint64_t limit;                /* most bytes accepted back (return_max_*) */
    int too_big;                   /* the other side sent more: stopped, nothing installed */
    int differs;
    int error;                     /* errno of a local failure, or 0 */
    const char *failed;            /* what failed, for the message */
};

/* The most bytes a copy of an original of `original_size` may come back
 * with: the larger of return_max_bytes (default 1 GiB) and
 * return_max_factor (default 4) times the original's size. */
uint64_t edited_copy_limit(ody_addon *a, uint64_t original_size);

void edited_copy_init(struct edited_copy *c, const char *dir, int original, uint64_t limit);
/* Reads `channel` to EOF, the first local failure, or the first byte past
 * c->limit (then c->too_big, and the channel is left unread: a target that
 * sends forever fills nothing here). */
void edited_copy_receive(struct edited_copy *c, int channel);
/* Puts the copy in place of `real` (mode, and owner if root, of `before`),
 * unless `real` changed since `before`: then the copy is kept and named.
 * The exit status; messages on r->err, "updated" on r->out. */
int edited_copy_install(struct edited_copy *c, const struct open_request *r, const char *real, const struct stat *before);
/* Removes the temporary file if there is one. */
void edited_copy_discard(struct edited_copy *c);

/* ---- the three entry points; each returns the process exit status */

int open_service(ody_addon *a, const ody_service_call *call);
int url_service(ody_addon *a, const ody_service_call *call);
int open_command(ody_addon *a, const ody_command_call *call);

#endif
