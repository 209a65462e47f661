/*
 * split_gpg_server.c - qubes.Gpg, the vault's side.
 *
 * Reads the command header, re-parses and re-checks the arguments (the
 * client's check is a courtesy to its user, never a guarantee), asks for
 * consent, runs gpg, and relays descriptor frames both ways until gpg has
 * exited and everything it wrote has been sent; then the exit frame.
 *
 * Flow control, so that neither end can wedge the other: our ends of gpg's
 * pipes are non-blocking; data for one of gpg's inputs is only read from
 * the channel while that input's buffer has room, and gpg's outputs are
 * written to the channel with blocking writes (the client always keeps
 * reading its socket).
 */
#define _GNU_SOURCE
#include "split_gpg.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "split_gpg_consent.h"
#include "split_gpg_options.h"
#include "split_gpg_spawn.h"
#include "split_gpg_wire.h"

#define INPUT_BUFFER (2 * WIRE_MAX_PAYLOAD)

struct gpg_input {
    int fd_num;          /* as gpg numbers it */
    int pipe;            /* our write end; -1 once closed */
    int eof_received;    /* the client sent this descriptor's EOF */
    size_t start, end;   /* pending bytes: buf[start..end) */
    uint8_t buf[INPUT_BUFFER];
};

struct relay {
    int chan_in, chan_out;
    struct gpg_child child;
    struct gpg_request *req;
    struct gpg_input *inputs;     /* req->in_count of them */
    int chan_eof;
    /* the frame being read from the channel */
    uint8_t header[WIRE_HEADER_SIZE];
    size_t header_have;
    struct gpg_input *target;     /* non-NULL while a payload is being read */
    uint32_t remaining;
    int child_status;             /* -1 while gpg runs */
    uint8_t out_frame[WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD];
};

static void close_input(struct gpg_input *in) {
    if (in->pipe >= 0) close(in->pipe);
    in->pipe = -1;
    in->start = in->end = 0;
}

/* 0, or -1 on a protocol error (reason in why). */
static int frame_header_done(struct relay *r, char *why, size_t why_size) {
    int32_t fd_num;
    uint32_t len;
    wire_get_header(r->header, &fd_num, &len);
    r->header_have = 0;
    struct gpg_input *in = NULL;
    for (int i = 0; i < r->req->in_count; i++)
        if (r->inputs[i].fd_num == fd_num) in = &r->inputs[i];
    if (in == NULL || in->eof_received) {
        snprintf(why, why_size, "protocol error: a frame for descriptor %d, which gpg does not read (or is closed)", (int)fd_num);
        return -1;
    }
    if (len > WIRE_MAX_PAYLOAD) {
        snprintf(why, why_size, "protocol error: a frame of %u bytes (at most %d)", len, WIRE_MAX_PAYLOAD);
        return -1;
    }
    if (len == 0) {
        in->eof_received = 1;
        if (in->start == in->end) close_input(in);
        return 0;
    }
    r->target = in;
    r->remaining = len;
    return 0;
}

/* Reads what the channel has: a header, or payload into its input's
 * buffer (thrown away if gpg no longer reads that input). 0, or -1 on a
 * protocol or channel error. */
static int read_channel(struct relay *r, char *why, size_t why_size) {
    ssize_t n;
    if (r->target == NULL) {
        n = read(r->chan_in, r->header + r->header_have, sizeof r->header - r->header_have);
    } else if (r->target->pipe < 0) {
        uint8_t sink[4096];
        n = read(r->chan_in, sink, r->remaining < sizeof sink ? r->remaining : sizeof sink);
    } else {
        struct gpg_input *in = r->target;
        if (in->start == in->end) in->start = in->end = 0;
        if (in->end == sizeof in->buf && in->start > 0) {
            memmove(in->buf, in->buf + in->start, in->end - in->start);
            in->end -= in->start;
            in->start = 0;
        }
        size_t room = sizeof in->buf - in->end;
        if (room == 0) return 0;
        n = read(r->chan_in, in->buf + in->end, r->remaining < room ? r->remaining : room);
        if (n > 0) in->end += (size_t)n;
    }
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : (snprintf(why, why_size, "channel read: %s", strerror(errno)), -1);
    if (n == 0) {
        if (r->target != NULL || r->header_have > 0) {
            snprintf(why, why_size, "protocol error: the client's stream ended inside a frame");
            return -1;
        }
        /* The client sent everything it will: what gpg still reads ends. */
        r->chan_eof = 1;
        for (int i = 0; i < r->req->in_count; i++) {
            r->inputs[i].eof_received = 1;
            if (r->inputs[i].start == r->inputs[i].end) close_input(&r->inputs[i]);
        }
        return 0;
    }
    if (r->target == NULL) {
        r->header_have += (size_t)n;
        return r->header_have == sizeof r->header ? frame_header_done(r, why, why_size) : 0;
    }
    r->remaining -= (uint32_t)n;
    if (r->remaining == 0) r->target = NULL;
    return 0;
}

static void write_input(struct gpg_input *in) {
    while (in->pipe >= 0 && in->start < in->end) {
        ssize_t n = write(in->pipe, in->buf + in->start, in->end - in->start);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close_input(in);   /* gpg closed it (EPIPE): the rest is not wanted */
            return;
        }
        in->start += (size_t)n;
    }
    if (in->pipe >= 0 && in->eof_received && in->start == in->end) close_input(in);
}

/* Relays one read of gpg's output i; at EOF sends the EOF frame and closes
 * it. -1 if the channel is gone. */
static int relay_output(struct relay *r, int i) {
    int *pipe_fd = &r->child.out_pipes[i];
    ssize_t n = read(*pipe_fd, r->out_frame + WIRE_HEADER_SIZE, WIRE_MAX_PAYLOAD);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    if (n <= 0) {
        close(*pipe_fd);
        *pipe_fd = -1;
        return wire_send_frame(r->chan_out, r->req->out_fds[i], NULL, 0);
    }
    wire_put_header(r->out_frame, r->req->out_fds[i], (uint32_t)n);
    return wire_write_fully(r->chan_out, r->out_frame, WIRE_HEADER_SIZE + (size_t)n);
}

static int outputs_open(const struct relay *r) {
    for (int i = 0; i < r->req->out_count; i++)
        if (r->child.out_pipes[i] >= 0) return 1;
    return 0;
}

static void reap(struct relay *r, int options) {
    int status;
    pid_t p;
    while ((p = waitpid(r->child.pid, &status, options)) < 0 && errno == EINTR) {}
    if (p == r->child.pid) r->child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* gpg has exited: everything it wrote is in its pipes. Send it, then the
 * EOFs (a daemon it started, say gpg-agent, must not keep the call open). */
static int drain_outputs(struct relay *r) {
    for (int i = 0; i < r->req->out_count; i++) {
        while (r->child.out_pipes[i] >= 0) {
            ssize_t n = read(r->child.out_pipes[i], r->out_frame + WIRE_HEADER_SIZE, WIRE_MAX_PAYLOAD);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(r->child.out_pipes[i]);
                r->child.out_pipes[i] = -1;
                if (wire_send_frame(r->chan_out, r->req->out_fds[i], NULL, 0) != 0) return -1;
                break;
            }
            wire_put_header(r->out_frame, r->req->out_fds[i], (uint32_t)n);
            if (wire_write_fully(r->chan_out, r->out_frame, WIRE_HEADER_SIZE + (size_t)n) != 0) return -1;
        }
    }
    return 0;
}

enum { KIND_CHANNEL = -1, KIND_PIDFD = -2, KIND_OUTPUT = 100, KIND_INPUT = 200 };

/* What to wait for now: the channel while the frame being read has
 * somewhere to go, gpg's exit, gpg's outputs, and gpg's inputs that have
 * bytes waiting. kinds[k] says what pfds[k] is. */
static int poll_set(const struct relay *r, struct pollfd *pfds, int *kinds) {
    int n = 0;
    const struct gpg_input *t = r->target;
    if (!r->chan_eof && (t == NULL || t->pipe < 0 || t->end < sizeof t->buf || t->start > 0)) {
        pfds[n] = (struct pollfd){.fd = r->chan_in, .events = POLLIN};
        kinds[n++] = KIND_CHANNEL;
    }
    if (r->child_status < 0 && r->child.pidfd >= 0) {
        pfds[n] = (struct pollfd){.fd = r->child.pidfd, .events = POLLIN};
        kinds[n++] = KIND_PIDFD;
    }
    for (int i = 0; i < r->req->out_count; i++)
        if (r->child.out_pipes[i] >= 0) {
            pfds[n] = (struct pollfd){.fd = r->child.out_pipes[i], .events = POLLIN};
            kinds[n++] = KIND_OUTPUT + i;
        }
    for (int i = 0; i < r->req->in_count; i++)
        if (r->inputs[i].pipe >= 0 && r->inputs[i].start < r->inputs[i].end) {
            pfds[n] = (struct pollfd){.fd = r->inputs[i].pipe, .events = POLLOUT};
            kinds[n++] = KIND_INPUT + i;
        }
    return n;
}

/* The poll loop. 0 when gpg has exited and all its output is sent; -1 on a
 * channel or protocol error (the caller then kills gpg). */
static int relay_loop(struct relay *r, char *why, size_t why_size) {
    struct pollfd pfds[2 + 2 * GPG_MAX_FDS];
    int kinds[2 + 2 * GPG_MAX_FDS];
    while (r->child_status < 0 || outputs_open(r)) {
        int n = poll_set(r, pfds, kinds);
        /* Without a pidfd (Linux before 5.3) gpg's exit is looked for every 50 ms. */
        int timeout = r->child_status < 0 && r->child.pidfd < 0 ? 50 : -1;
        int ready = poll(pfds, (nfds_t)n, timeout);
        if (ready < 0 && errno != EINTR) {
            snprintf(why, why_size, "poll: %s", strerror(errno));
            return -1;
        }
        int exited = 0;
        for (int k = 0; ready > 0 && k < n; k++) {
            if (pfds[k].revents == 0) continue;
            if (kinds[k] == KIND_CHANNEL) {
                if (read_channel(r, why, why_size) != 0) return -1;
            } else if (kinds[k] == KIND_PIDFD) {
                exited = 1;
            } else if (kinds[k] >= KIND_INPUT) {
                write_input(&r->inputs[kinds[k] - KIND_INPUT]);
            } else if (relay_output(r, kinds[k] - KIND_OUTPUT) != 0) {
                snprintf(why, why_size, "the client's channel is gone");
                return -1;
            }
        }
        if (r->child_status >= 0 || !(exited || r->child.pidfd < 0)) continue;
        reap(r, exited ? 0 : WNOHANG);
        if (r->child_status < 0) continue;
        /* gpg is gone: nothing more goes to it; what it wrote goes out. */
        for (int i = 0; i < r->req->in_count; i++) close_input(&r->inputs[i]);
        if (drain_outputs(r) != 0) {
            snprintf(why, why_size, "the client's channel is gone");
            return -1;
        }
    }
    return 0;
}

static int refuse_call(const ody_service_call *call, const char *message, int status) {
    if (wire_send_refusal(call->stdout_fd, message, status) != 0)
        say(call->stderr_fd, "%s", message);
    return status;
}

/* At most max_concurrent_calls calls from one source at a time (default 4):
 * each holds a gpg process, 2 MiB of buffers and, the first time, an ask on
 * the user's screen in the vault. A slot is a locked file in a private
 * runtime directory, freed by the kernel when the call ends however it
 * ends. The descriptor holding it, -2 when there is no limit, or -1 after
 * a refusal (the call's exit status in *status). */
static int take_call_slot(ody_addon *a, const ody_service_call *call, int *status) {
    uint64_t max = addon_config_u64(a, "max_concurrent_calls", 4);
    if (max == 0) return -2;
    char why[4200], message[4400];
    if (!split_gpg_valid_domain(call->source)) {
        *status = refuse_call(call, "split-gpg: the calling domain's name is not valid; refused", WIRE_STATUS_REFUSED);
        return -1;
    }
    int dir = addon_private_dir("odyssey-split-gpg-calls", why, sizeof why);
    int slot = dir >= 0 ? addon_take_slot(dir, call->source, max) : -1;
    int e = errno;
    if (dir >= 0) close(dir);
    if (slot >= 0) return slot;
    if (dir < 0)
        snprintf(message, sizeof message, "split-gpg: cannot count the calls in progress: %s; refused", why);
    else if (e == EBUSY)
        snprintf(message, sizeof message, "split-gpg: %llu calls from %s are already running (max_concurrent_calls); refused",
                 (unsigned long long)max, call->source);
    else
        snprintf(message, sizeof message, "split-gpg: cannot count the calls in progress: %s; refused", strerror(e));
    *status = refuse_call(call, message, 1);
    return -1;
}

static int serve(ody_addon *a, const ody_service_call *call);

int split_gpg_serve(ody_addon *a, const ody_service_call *call) {
    signal(SIGPIPE, SIG_IGN);   /* a closed pipe is an error return, not a death */
    int status = 1;
    int slot = take_call_slot(a, call, &status);
    if (slot == -1) return status;
    status = serve(a, call);
    if (slot >= 0) close(slot);
    return status;
}

static int serve(ody_addon *a, const ody_service_call *call) {
    char why[512];

    uint8_t len_bytes[4];
    static char untrusted_command[GPG_COMMAND_MAX + 1];
    if (read_exact(call->stdin_fd, len_bytes, sizeof len_bytes) != 0) {
        say(call->stderr_fd, "qubes.Gpg: no command header from %s", call->source);
        return 2;
    }
    uint32_t untrusted_len = wire_get_u32(len_bytes);
    if (untrusted_len > GPG_COMMAND_MAX) return refuse_call(call, "split-gpg: the command header is too long", 2);
    size_t len = untrusted_len;
    if (read_exact(call->stdin_fd, untrusted_command, len) != 0)
        return refuse_call(call, "split-gpg: the command header is cut short", 2);
    const char *untrusted_argv[GPG_MAX_ARGS + 1];
    int argc = wire_unpack_command(untrusted_command, len, untrusted_argv, GPG_MAX_ARGS);
    if (argc < 0) return refuse_call(call, "split-gpg: the command header is malformed", 2);

    static struct gpg_request req;
    if (gpg_parse(argc, untrusted_argv, GPG_SIDE_VAULT, &req, why, sizeof why) != 0) {
        char message[600];
        snprintf(message, sizeof message, "split-gpg (vault): %s", why);
        addon_log(a, ODY_LOG_WARNING, "refused a call from %s: %s", call->source, why);
        return refuse_call(call, message, WIRE_STATUS_REFUSED);
    }
    /* From here on the arguments are checked: req holds them. */

    if (consent_obtain(a, call->source, call->stderr_fd, why, sizeof why) != 0)
        return refuse_call(call, why, WIRE_STATUS_NO_CONSENT);

    char gpg_buf[1024];
    const char *gpg_path = addon_config(a, "gpg", gpg_buf, sizeof gpg_buf, "/usr/bin/gpg");
    if (gpg_path[0] != '/') return refuse_call(call, "split-gpg: config gpg must be an absolute path", 1);

    static struct relay r;
    static struct gpg_input inputs[GPG_MAX_FDS];
    memset(&r, 0, sizeof r);
    r.chan_in = call->stdin_fd;
    r.chan_out = call->stdout_fd;
    r.req = &req;
    r.inputs = inputs;
    r.child_status = -1;
    if (gpg_spawn(gpg_path, &req, &r.child, why, sizeof why) != 0) {
        char message[600];
        snprintf(message, sizeof message, "split-gpg: %s", why);
        return refuse_call(call, message, 1);
    }
    for (int i = 0; i < req.in_count; i++) {
        inputs[i].fd_num = req.in_fds[i];
        inputs[i].pipe = r.child.in_pipes[i];
        inputs[i].eof_received = 0;
        inputs[i].start = inputs[i].end = 0;
    }
    if (relay_loop(&r, why, sizeof why) != 0) {
        say(call->stderr_fd, "qubes.Gpg: %s; stopping gpg", why);
        if (r.child_status < 0) {
            kill(r.child.pid, SIGKILL);
            reap(&r, 0);
        }
        return 1;
    }
    if (r.child.pidfd >= 0) close(r.child.pidfd);
    uint8_t st[4];
    wire_put_u32(st, (uint32_t)r.child_status);
    if (wire_send_frame(call->stdout_fd, WIRE_EXIT_FD, st, sizeof st) != 0) return 1;
    return r.child_status;
}
