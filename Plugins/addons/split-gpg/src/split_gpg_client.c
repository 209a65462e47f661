/*
 * split_gpg_client.c - ody-gpg, a gpg front end in a domain without keys.
 *
 *   ody-gpg [gpg options] [-]     e.g.  ody-gpg -bas < file > file.asc
 *                                       ody-gpg --verify file.asc - < file
 *
 * Checks the arguments with the same allow-list as the vault (so a refused
 * option is refused here, with a clear message and exit 2, before anything
 * is called), opens the --verify signature file if one is named, calls
 * qubes.Gpg in the vault (ODYSSEY_GPG_DOMAIN, else config "vault", else
 * "@default" so policy chooses), and relays stdin/stdout/stderr and the
 * --status-fd/--logger-fd/--attribute-fd/--command-fd descriptors through
 * the frames described in split_gpg_wire.h. Exits with gpg's status.
 *
 * The call socket is ours, so it is made non-blocking: the client never
 * blocks writing to the vault, and always keeps reading what the vault
 * sends, which is what lets the vault use plain blocking writes.
 */
#define _GNU_SOURCE
#include "split_gpg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "split_gpg_consent.h"
#include "split_gpg_options.h"
#include "split_gpg_wire.h"

#define FRAME_SIZE (WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD)
#define QUEUE_SIZE (2 * FRAME_SIZE)

enum read_state { READ_HEADER, READ_PAYLOAD, READ_EXIT, READ_DONE };

struct client_relay {
    int sock;
    const ody_command_call *call;
    const struct gpg_request *wire;
    int err_fd;
    int in_open[GPG_MAX_FDS];
    int out_eof[GPG_MAX_FDS];
    int out_broken[GPG_MAX_FDS];   /* a local write failed: the rest is dropped */
    int send_closed;               /* the vault stopped reading */
    size_t q_start, q_end;
    uint8_t queue[QUEUE_SIZE];     /* frames waiting for the socket */
    enum read_state state;
    uint8_t header[WIRE_HEADER_SIZE];
    size_t header_have;
    int out_index;                 /* READ_PAYLOAD: which output */
    uint32_t remaining;
    uint8_t exit_bytes[4];
    size_t exit_have;
    int exit_status;
    uint8_t inbuf[FRAME_SIZE];
};

/* The descriptor gpg's number n stands for here: 0/1/2 are the command's
 * stdio, anything else is the same number in this process. */
static int local_fd(const struct client_relay *r, int n) {
    if (n == 0) return r->call->stdin_fd;
    if (n == 1) return r->call->stdout_fd;
    if (n == 2) return r->call->stderr_fd;
    return n;
}

static const char *vault_domain(ody_addon *a, char *buf, size_t size) {
    const char *env = getenv("ODYSSEY_GPG_DOMAIN");
    if (env != NULL && env[0] != 0) return env;
    return addon_config(a, "vault", buf, size, "@default");
}

static int valid_target(const char *s) {
    if (split_gpg_valid_domain(s)) return 1;
    size_t n = strlen(s);
    if (s[0] != '@' || n < 2 || n >= ODY_NAME_MAX) return 0;
    return strspn(s + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.-") == n - 1;
}

/* One read from input i into a frame at the end of the queue. */
static void read_input(struct client_relay *r, int i) {
    if (r->q_start > 0) {
        memmove(r->queue, r->queue + r->q_start, r->q_end - r->q_start);
        r->q_end -= r->q_start;
        r->q_start = 0;
    }
    uint8_t *frame = r->queue + r->q_end;
    ssize_t n = read(local_fd(r, r->wire->in_fds[i]), frame + WIRE_HEADER_SIZE, WIRE_MAX_PAYLOAD);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n < 0) {
        say(r->err_fd, "ody-gpg: reading descriptor %d: %s", r->wire->in_fds[i], strerror(errno));
        n = 0;
    }
    if (n == 0) r->in_open[i] = 0;   /* the EOF frame */
    wire_put_header(frame, r->wire->in_fds[i], (uint32_t)n);
    r->q_end += WIRE_HEADER_SIZE + (size_t)n;
}

static void write_socket(struct client_relay *r) {
    while (r->q_start < r->q_end) {
        ssize_t n = write(r->sock, r->queue + r->q_start, r->q_end - r->q_start);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            /* The vault is done reading (it finished, or refused): stop
             * sending, keep reading its answer. */
            r->send_closed = 1;
            r->q_start = r->q_end = 0;
            for (int i = 0; i < r->wire->in_count; i++) r->in_open[i] = 0;
            return;
        }
        r->q_start += (size_t)n;
    }
    r->q_start = r->q_end = 0;
}

static int protocol_error(struct client_relay *r, const char *what) {
    say(r->err_fd, "ody-gpg: protocol error from the vault: %s", what);
    r->state = READ_DONE;
    return -1;
}

static int header_done(struct client_relay *r) {
    int32_t fd_num;
    uint32_t len;
    wire_get_header(r->header, &fd_num, &len);
    r->header_have = 0;
    if (fd_num == WIRE_EXIT_FD) {
        if (len != 4) return protocol_error(r, "an exit frame of the wrong size");
        r->state = READ_EXIT;
        return 0;
    }
    int idx = -1;
    for (int i = 0; i < r->wire->out_count; i++)
        if (r->wire->out_fds[i] == fd_num) idx = i;
    if (idx < 0 || r->out_eof[idx]) return protocol_error(r, "a frame for a descriptor gpg does not write");
    if (len > WIRE_MAX_PAYLOAD) return protocol_error(r, "a frame that is too large");
    if (len == 0) {
        r->out_eof[idx] = 1;
        return 0;
    }
    r->out_index = idx;
    r->remaining = len;
    r->state = READ_PAYLOAD;
    return 0;
}

/* What the vault sends for a descriptor that is a terminal here passes
 * through this: control characters other than tab, newline and carriage
 * return become '_' (as ody-call does), so the other domain cannot drive
 * the terminal through gpg's messages. Files and pipes get the bytes as
 * sent. */
static int write_out(int fd, const uint8_t *p, size_t n) {
    if (!isatty(fd)) return wire_write_fully(fd, p, n);
    uint8_t shown[4096];
    while (n > 0) {
        size_t k = n < sizeof shown ? n : sizeof shown;
        for (size_t i = 0; i < k; i++) {
            uint8_t b = p[i];
            shown[i] = (b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f ? '_' : b;
        }
        if (wire_write_fully(fd, shown, k) != 0) return -1;
        p += k;
        n -= k;
    }
    return 0;
}

/* Consumes bytes read from the socket. */
static void consume(struct client_relay *r, const uint8_t *p, size_t n) {
    while (n > 0 && r->state != READ_DONE) {
        size_t take = 0;
        switch (r->state) {
        case READ_HEADER:
            take = WIRE_HEADER_SIZE - r->header_have < n ? WIRE_HEADER_SIZE - r->header_have : n;
            memcpy(r->header + r->header_have, p, take);
            r->header_have += take;
            if (r->header_have == WIRE_HEADER_SIZE && header_done(r) != 0) return;
            break;
        case READ_PAYLOAD:
            take = r->remaining < n ? r->remaining : n;
            if (!r->out_broken[r->out_index] &&
                write_out(local_fd(r, r->wire->out_fds[r->out_index]), p, take) != 0)
                r->out_broken[r->out_index] = 1;
            r->remaining -= (uint32_t)take;
            if (r->remaining == 0) r->state = READ_HEADER;
            break;
        case READ_EXIT:
            take = 4 - r->exit_have < n ? 4 - r->exit_have : n;
            memcpy(r->exit_bytes + r->exit_have, p, take);
            r->exit_have += take;
            if (r->exit_have == 4) {
                int32_t st = (int32_t)wire_get_u32(r->exit_bytes);
                r->exit_status = st < 0 || st > 255 ? 1 : st;
                r->state = READ_DONE;
            }
            break;
        case READ_DONE: return;
        }
        p += take;
        n -= take;
    }
}

/* Until the exit frame arrives or the vault goes away. */
static void relay(struct client_relay *r) {
    struct pollfd pfds[1 + GPG_MAX_FDS];
    int which[1 + GPG_MAX_FDS];
    while (r->state != READ_DONE) {
        int n = 0;
        pfds[n] = (struct pollfd){.fd = r->sock, .events = POLLIN | (r->q_end > r->q_start ? POLLOUT : 0)};
        which[n++] = -1;
        int room = QUEUE_SIZE - (r->q_end - r->q_start) >= FRAME_SIZE;
        for (int i = 0; room && !r->send_closed && i < r->wire->in_count; i++)
            if (r->in_open[i]) {
                pfds[n] = (struct pollfd){.fd = local_fd(r, r->wire->in_fds[i]), .events = POLLIN};
                which[n++] = i;
            }
        if (poll(pfds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            say(r->err_fd, "ody-gpg: poll: %s", strerror(errno));
            return;
        }
        if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = read(r->sock, r->inbuf, sizeof r->inbuf);
            if (got < 0 && errno != EINTR && errno != EAGAIN) return;
            if (got == 0) return;
            if (got > 0) consume(r, r->inbuf, (size_t)got);
        }
        if ((pfds[0].revents & POLLOUT) && !r->send_closed) write_socket(r);
        for (int k = 1; k < n; k++) {
            if (pfds[k].revents == 0) continue;
            if (QUEUE_SIZE - (r->q_end - r->q_start) < FRAME_SIZE) break;
            if (r->in_open[which[k]] && !r->send_closed) read_input(r, which[k]);
        }
        if (r->q_end > r->q_start && !r->send_closed) write_socket(r);
    }
}

static int refuse(int err_fd, const char *why) {
    say(err_fd, "ody-gpg: %s", why);
    return WIRE_STATUS_REFUSED;
}

int split_gpg_client(ody_addon *a, const ody_command_call *call) {
    int err_fd = call->stderr_fd;
    int argc = call->argc - 1;
    const char *const *argv = call->argv + 1;
    char why[512];
    static struct gpg_request req, wire;
    if (gpg_parse(argc, argv, GPG_SIDE_CLIENT, &req, why, sizeof why) != 0) return refuse(err_fd, why);
    for (int i = 0; i < req.in_count + req.out_count; i++) {
        int fd = i < req.in_count ? req.in_fds[i] : req.out_fds[i - req.in_count];
        if (fd > 2 && fcntl(fd, F_GETFD) < 0) {
            snprintf(why, sizeof why, "descriptor %d is not open (name only descriptors you redirect, e.g. 3>file)", fd);
            return refuse(err_fd, why);
        }
    }

    /* The argv sent to the vault: the --verify signature becomes /dev/fd/N,
     * a descriptor relayed like stdin. */
    const char *wire_argv[GPG_MAX_ARGS + 1];
    for (int i = 0; i < argc; i++) wire_argv[i] = argv[i];
    char sig_arg[32];
    if (req.verify_path_index >= 0 && strncmp(argv[req.verify_path_index], "/dev/fd/", 8) != 0) {
        const char *path = argv[req.verify_path_index];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            snprintf(why, sizeof why, "cannot open the signature %.200s: %s", path, strerror(errno));
            return refuse(err_fd, why);
        }
        snprintf(sig_arg, sizeof sig_arg, "/dev/fd/%d", fd);
        wire_argv[req.verify_path_index] = sig_arg;
    }
    /* What the vault will relay is what its own parse of these bytes says. */
    if (gpg_parse(argc, wire_argv, GPG_SIDE_VAULT, &wire, why, sizeof why) != 0) return refuse(err_fd, why);
    static uint8_t command[4 + GPG_COMMAND_MAX];
    long command_len = wire_pack_command(argc, wire_argv, command, sizeof command);
    if (command_len < 0)
        return refuse(err_fd, "the arguments are too long (split GPG carries at most 1024 bytes of arguments)");

    char vault_buf[128];
    const char *vault = vault_domain(a, vault_buf, sizeof vault_buf);
    if (!valid_target(vault)) {
        say(err_fd, "ody-gpg: the vault \"%.64s\" (ODYSSEY_GPG_DOMAIN or config vault) is not a domain name", vault);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    int sock = -1;
    uint64_t call_id = 0;
    if (addon_call(a, vault, "qubes.Gpg", &sock, &call_id, err_fd) != 0) return 1;
    int fl = fcntl(sock, F_GETFL);
    if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) != 0) {
        say(err_fd, "ody-gpg: fcntl: %s", strerror(errno));
        close(sock);
        addon_call_finish(a, call_id);
        return 1;
    }

    static struct client_relay r;
    memset(&r, 0, sizeof r);
    r.sock = sock;
    r.call = call;
    r.wire = &wire;
    r.err_fd = err_fd;
    r.state = READ_HEADER;
    r.exit_status = -1;
    for (int i = 0; i < wire.in_count; i++) r.in_open[i] = 1;
    memcpy(r.queue, command, (size_t)command_len);
    r.q_end = (size_t)command_len;
    relay(&r);
    close(sock);
    int call_status = addon_call_finish(a, call_id);

    if (r.state == READ_DONE && r.exit_status >= 0) return r.exit_status;
    if (r.state == READ_DONE) return 1;   /* a protocol error, already said */
    if (call_status == 126) {
        say(err_fd, "ody-gpg: the call to qubes.Gpg in %s was refused by policy", vault);
        return 126;
    }
    if (call_status == 127) {
        say(err_fd, "ody-gpg: %s has no qubes.Gpg service (is split-gpg installed there?)", vault);
        return 127;
    }
    say(err_fd, "ody-gpg: the vault ended the call without a result (qubes.Gpg exited with %d)", call_status);
    return call_status != 0 ? call_status : 1;
}
