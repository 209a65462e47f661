/* split_gpg_wire.c - encoding of the qubes.Gpg stream (see split_gpg_wire.h). */
#include "split_gpg_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "split_gpg_options.h"

void wire_put_u32(uint8_t out[4], uint32_t v) {
    out[0] = (uint8_t)v;
    out[1] = (uint8_t)(v >> 8);
    out[2] = (uint8_t)(v >> 16);
    out[3] = (uint8_t)(v >> 24);
}

uint32_t wire_get_u32(const uint8_t in[4]) {
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

void wire_put_header(uint8_t out[WIRE_HEADER_SIZE], int32_t fd_num, uint32_t len) {
    wire_put_u32(out, (uint32_t)fd_num);
    wire_put_u32(out + 4, len);
}

void wire_get_header(const uint8_t in[WIRE_HEADER_SIZE], int32_t *fd_num, uint32_t *len) {
    *fd_num = (int32_t)wire_get_u32(in);
    *len = wire_get_u32(in + 4);
}

long wire_pack_command(int argc, const char *const *argv, uint8_t *out, size_t out_size) {
    size_t used = 0;
    if (out_size < 4 + GPG_COMMAND_MAX) return -1;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (used + n > GPG_COMMAND_MAX) return -1;
        memcpy(out + 4 + used, argv[i], n);
        used += n;
    }
    wire_put_u32(out, (uint32_t)used);
    return (long)(4 + used);
}

int wire_unpack_command(char *untrusted_command, size_t len, const char **argv, int max_args) {
    if (len > GPG_COMMAND_MAX) return -1;
    if (len > 0 && untrusted_command[len - 1] != 0) return -1;
    int argc = 0;
    for (size_t pos = 0; pos < len;) {
        if (argc >= max_args) return -1;
        argv[argc++] = untrusted_command + pos;
        pos += strlen(untrusted_command + pos) + 1;
    }
    return argc;
}

int wire_write_fully(int fd, const void *buf, size_t size) {
    const uint8_t *p = buf;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return -1;
            continue;
        }
        if (n <= 0) return -1;
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int wire_send_frame(int fd, int32_t fd_num, const void *payload, uint32_t len) {
    uint8_t header[WIRE_HEADER_SIZE];
    wire_put_header(header, fd_num, len);
    if (wire_write_fully(fd, header, sizeof header) != 0) return -1;
    return len > 0 ? wire_write_fully(fd, payload, len) : 0;
}

int wire_send_refusal(int fd, const char *message, int32_t status) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", message);
    if (n < 0) return -1;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    uint8_t st[4];
    wire_put_u32(st, (uint32_t)status);
    if (wire_send_frame(fd, 2, line, (uint32_t)n) != 0) return -1;
    return wire_send_frame(fd, WIRE_EXIT_FD, st, sizeof st);
}
