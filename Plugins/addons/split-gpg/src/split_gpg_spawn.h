/* split_gpg_spawn.h - starts gpg in the vault with its descriptors on pipes. */
#ifndef SPLIT_GPG_SPAWN_H
#define SPLIT_GPG_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "split_gpg_options.h"

struct gpg_child {
    pid_t pid;
    int pidfd;                      /* readable when gpg exits; -1 if the kernel has no pidfd_open */
    int in_pipes[GPG_MAX_FDS];      /* our write ends, in req->in_fds order (non-blocking) */
    int out_pipes[GPG_MAX_FDS];     /* our read ends, in req->out_fds order (non-blocking) */
};

/* Runs `gpg_path --no-tty --batch --disable-dirmngr --photo-viewer=/bin/true
 * --exit-on-status-write-error <req->gpg_args>` with posix_spawn (no shell),
 * the environment passed through (GNUPGHOME, HOME...), and each relayed
 * descriptor a pipe at the number gpg was told. Every other descriptor of
 * this process is closed in gpg. 0, or -1 with a reason in why. */
int gpg_spawn(const char *gpg_path, const struct gpg_request *req, struct gpg_child *child, char *why,
              size_t why_size);

#endif
