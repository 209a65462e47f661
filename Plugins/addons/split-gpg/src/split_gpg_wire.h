/*
 * split_gpg_wire.h - the qubes.Gpg stream between ody-gpg and the vault.
 *
 * The layout is Qubes split-gpg's (a command header, then descriptor frames),
 * with every field fixed to little-endian and the end of the call made
 * explicit:
 *
 *   client -> vault
 *     struct command_hdr { u32 len; char command[len]; }
 *         the arguments after "ody-gpg", each one NUL-terminated, back to
 *         back; len <= 1024 (Qubes' command[1024]). Only len bytes are sent.
 *     then frames for the descriptors gpg reads (stdin, --command-fd, the
 *     --verify signature).
 *
 *   vault -> client
 *     frames for the descriptors gpg writes (stdout, stderr, --status-fd,
 *     --logger-fd, --attribute-fd), then exactly one exit frame.
 *
 *   frame: struct header { i32 fd_num; u32 len; } then len bytes, len <= 65536.
 *     fd_num >= 0: data for that descriptor, numbered as gpg numbers it
 *                  ("--status-fd 3" -> fd_num 3). len == 0 is its EOF; no
 *                  frame for that descriptor follows it.
 *     fd_num == -1 (vault -> client only): the exit frame, len == 4, the
 *                  payload is gpg's exit status (i32). Nothing follows it.
 *
 * Which descriptors travel in which direction is never sent: both ends derive
 * the lists from the arguments with the same parser (gpg_parse), and a frame
 * for any other descriptor, or data after its EOF, ends the call as a
 * protocol error. When the vault refuses a call (an option, no consent) it
 * sends the reason as fd 2 data and an exit frame, so the user reads it.
 */
#ifndef SPLIT_GPG_WIRE_H
#define SPLIT_GPG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_SIZE 8
#define WIRE_MAX_PAYLOAD 65536
#define WIRE_EXIT_FD (-1)
/* Exit statuses of refusals, as seen by the user. */
#define WIRE_STATUS_REFUSED 2      /* an option or argument refused */
#define WIRE_STATUS_NO_CONSENT 1   /* the vault's user did not allow the call */

void wire_put_header(uint8_t out[WIRE_HEADER_SIZE], int32_t fd_num, uint32_t len);
void wire_get_header(const uint8_t in[WIRE_HEADER_SIZE], int32_t *fd_num, uint32_t *len);
void wire_put_u32(uint8_t out[4], uint32_t v);
uint32_t wire_get_u32(const uint8_t in[4]);

/* Packs argv into command (u32 len + NUL-separated args). Returns the
 * number of bytes to send, or -1 if the arguments exceed 1024 bytes. */
long wire_pack_command(int argc, const char *const *argv, uint8_t *out, size_t out_size);

/* Splits untrusted command bytes (len <= 1024) into argv pointers into
 * `untrusted_command` itself. Returns argc, or -1 if the bytes are not
 * NUL-terminated arguments or there are more than max_args. */
int wire_unpack_command(char *untrusted_command, size_t len, const char **argv, int max_args);

/* write(2) until done, waiting in poll(2) if fd is non-blocking. 0 or -1. */
int wire_write_fully(int fd, const void *buf, size_t size);

/* One frame (header + payload) written with wire_write_fully. */
int wire_send_frame(int fd, int32_t fd_num, const void *payload, uint32_t len);

/* A refusal as the vault sends it: the message (plus newline) as fd 2 data,
 * fd 2's EOF is not sent (gpg never ran), then the exit frame. */
int wire_send_refusal(int fd, const char *message, int32_t status);

#endif
