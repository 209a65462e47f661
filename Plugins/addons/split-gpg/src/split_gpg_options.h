/*
 * split_gpg_options.h - the gpg option allow-list and the one parser both
 * ends use: ody-gpg parses to refuse early with a clear message, and the
 * vault parses again because it must never trust the client's parse.
 */
#ifndef SPLIT_GPG_OPTIONS_H
#define SPLIT_GPG_OPTIONS_H

#include <stddef.h>

/* Qubes' limits: at most 16 file descriptors relayed, fd numbers up to 1024,
 * and the packed argv (NUL-separated) fits in command_hdr.command[1024]. */
#define GPG_MAX_FDS 16
#define GPG_MAX_FD_VALUE 1024
#define GPG_COMMAND_MAX 1024
#define GPG_MAX_ARGS (GPG_COMMAND_MAX / 2)

/* Which end is parsing: the client may name a signature file after --verify
 * (it opens it and sends it as /dev/fd/N, as Qubes does); the vault accepts
 * only /dev/fd/N naming one of the relayed descriptors. */
enum gpg_side { GPG_SIDE_CLIENT, GPG_SIDE_VAULT };

struct gpg_request {
    /* The options, rewritten to their full long names with any value in
     * the same argument ("--recipient=KEY", so no value can ever be read
     * as an option); then "--" and the positional arguments. What the
     * vault appends to its fixed gpg options. Pointers into `text`, the
     * parsed argv, or static strings. */
    const char *gpg_args[GPG_COMMAND_MAX + 2];
    int gpg_argc;
    char text[GPG_MAX_ARGS * 40 + GPG_COMMAND_MAX];
    size_t text_used;
    /* Descriptors relayed client -> vault (stdin, --command-fd, the --verify
     * signature) and vault -> client (stdout, stderr, --status-fd,
     * --logger-fd, --attribute-fd), as gpg will see them. */
    int in_fds[GPG_MAX_FDS];
    int in_count;
    int out_fds[GPG_MAX_FDS];
    int out_count;
    /* Client side: index in argv of the --verify signature path, or -1. */
    int verify_path_index;
};

/* Parses argv (without argv[0]). 0 on success; -1 with a one-line reason in
 * `why` (naming the refused option or argument) otherwise. */
int gpg_parse(int argc, const char *const *argv, enum gpg_side side, struct gpg_request *req, char *why,
              size_t why_size);

#endif
