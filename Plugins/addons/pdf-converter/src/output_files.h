/*
 * output_files.h - where the caller's files go, never overwriting one:
 * NAME.trusted.pdf beside the original (written as a hidden temp file and
 * renamed into place only once complete), and the original archived into
 * ~/QubesUntrustedPDFs/ as Qubes does. Functions return 0, or -1 with a
 * one-line reason in `why` (size 256).
 */
#ifndef PDFC_OUTPUT_FILES_H
#define PDFC_OUTPUT_FILES_H

#include <stddef.h>

#define PDFC_ARCHIVE_DIR "QubesUntrustedPDFs"

/* "dir/report.pdf" -> "dir/report.trusted.pdf"; a name without a ".pdf"
 * suffix (any case) keeps its whole name: "scan" -> "scan.trusted.pdf". */
int trusted_output_path(const char *input, char *out, size_t size, char *why);

/* A new hidden temp file beside `final` (".NAME.XXXXXX"), mode 0600 until
 * finished: *fd and its path. */
int create_temp_beside(const char *final, char *tmp_path, size_t size, int *fd, char *why);

/* Gives the finished temp file the mode a new file would get (0666 & ~umask). */
int set_default_mode(int fd, char *why);

/* rename(2) that fails with EEXIST instead of replacing `to`. */
int rename_no_replace(const char *from, const char *to);

/* Moves `input` into $HOME/QubesUntrustedPDFs/ (created 0700), adding
 * ".1", ".2"... before the extension if the name is taken; the new path in
 * `where`. */
int archive_original(const char *input, char *where, size_t size, char *why);

#endif
