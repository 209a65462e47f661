/*
 * split_gpg_options.c - the one parser both ends run over a gpg argv: the
 * allow-list (split_gpg_option_table.c) applied option by option, short
 * clusters (-bas, -rKEY) unpacked, values checked, descriptors collected,
 * positional arguments checked, and the argv rebuilt for gpg. The rules are
 * described at the top of split_gpg_option_table.c.
 */
#include "split_gpg_options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split_gpg_option_table.h"

int gpg_refuse(char *why, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static int fd_listed(const int *fds, int count, int fd) {
    for (int i = 0; i < count; i++)
        if (fds[i] == fd) return 1;
    return 0;
}

/* Appends one argument for gpg; refuses past the table's end (a single
 * argument like -bbbb... can expand to many). */
static int push_arg(struct gpg_request *req, const char *arg, char *why, size_t size) {
    if ((size_t)req->gpg_argc >= sizeof req->gpg_args / sizeof req->gpg_args[0])
        return gpg_refuse(why, size, "too many options (split GPG carries at most %d bytes of arguments)", GPG_COMMAND_MAX);
    req->gpg_args[req->gpg_argc++] = arg;
    return 0;
}

static int add_fd(struct gpg_request *req, int output, int fd, const char *shown, char *why, size_t size) {
    int *list = output ? req->out_fds : req->in_fds;
    int *count = output ? &req->out_count : &req->in_count;
    if (fd_listed(output ? req->in_fds : req->out_fds, output ? req->in_count : req->out_count, fd))
        return gpg_refuse(why, size, "%s %d is refused: descriptor %d cannot be both read and written by gpg", shown, fd, fd);
    if (fd_listed(list, *count, fd)) return 0;
    if (req->in_count + req->out_count >= GPG_MAX_FDS)
        return gpg_refuse(why, size, "%s %d is refused: at most %d descriptors are relayed", shown, fd, GPG_MAX_FDS);
    list[(*count)++] = fd;
    return 0;
}

/* The parse state between options. */
struct parse_state {
    int command_role;   /* ROLE_PLAIN until a command is seen */
    int verify;
};

static int apply_option(const struct gpg_option *o, const char *shown, const char *untrusted_value,
                        struct gpg_request *req, struct parse_state *st, char *why, size_t size) {
    if (o->value != VALUE_NONE && gpg_check_value(o, shown, untrusted_value, why, size) != 0) return -1;
    if (o->role == ROLE_CMD_DATA || o->role == ROLE_CMD_USERID || o->role == ROLE_CMD_VERIFY) {
        int userid = o->role == ROLE_CMD_USERID;
        if (st->command_role != ROLE_PLAIN && (st->command_role == ROLE_CMD_USERID) != userid)
            return gpg_refuse(why, size, "%s is refused: conflicting commands (key listing and data commands are not mixed)",
                          shown);
        if (st->command_role == ROLE_PLAIN || userid) st->command_role = o->role;
        if (o->role == ROLE_CMD_VERIFY) st->verify = 1;
    }
    if (o->role == ROLE_FD_OUT || o->role == ROLE_FD_IN) {
        int fd = atoi(untrusted_value);
        if (o->role == ROLE_FD_OUT && fd == 0)
            return gpg_refuse(why, size, "%s 0 is refused: descriptor 0 is gpg's input", shown);
        if (o->role == ROLE_FD_IN && (fd == 1 || fd == 2))
            return gpg_refuse(why, size, "%s %d is refused: descriptor %d is gpg's output", shown, fd, fd);
        if (add_fd(req, o->role == ROLE_FD_OUT, fd, shown, why, size) != 0) return -1;
    }
    /* Rewritten: the full long name from the table (never the domain's
     * spelling), and the value, checked above, after "=". */
    if (o->value == VALUE_NONE) return push_arg(req, o->flag, why, size);
    size_t room = sizeof req->text - req->text_used;
    int n = snprintf(req->text + req->text_used, room, "%s=%s", o->flag, untrusted_value);
    if (n < 0 || (size_t)n >= room) return gpg_refuse(why, size, "%s is refused: the options are too long", shown);
    const char *joined = req->text + req->text_used;
    req->text_used += (size_t)n + 1;
    return push_arg(req, joined, why, size);
}

/* --verify's first positional argument: the signature. The client may name
 * a file (it will open it); the vault accepts only /dev/fd/N, N >= 3. */
static int verify_signature_arg(const char *untrusted_arg, int index, enum gpg_side side, struct gpg_request *req,
                                char *why, size_t size) {
    const char *prefix = "/dev/fd/";
    if (strncmp(untrusted_arg, prefix, strlen(prefix)) == 0) {
        const char *num = untrusted_arg + strlen(prefix);
        if (!gpg_is_decimal(num, 4) || atoi(num) < 3 || atoi(num) > GPG_MAX_FD_VALUE)
            return gpg_refuse(why, size, "--verify %.64s is refused: expected /dev/fd/N with 3 <= N <= %d", untrusted_arg,
                          GPG_MAX_FD_VALUE);
        if (side == GPG_SIDE_CLIENT) req->verify_path_index = index;
        return add_fd(req, 0, atoi(num), "--verify", why, size);
    }
    if (side == GPG_SIDE_VAULT)
        return gpg_refuse(why, size, "argument %.64s is refused: the vault takes the signature only as /dev/fd/N", untrusted_arg);
    req->verify_path_index = index;
    return 0;
}

static int check_positionals(int argc, const char *const *argv, int first, enum gpg_side side,
                             struct gpg_request *req, const struct parse_state *st, char *why, size_t size) {
    if (push_arg(req, "--", why, size) != 0) return -1;
    for (int i = first; i < argc; i++) {
        const char *untrusted_arg = argv[i];
        if (st->command_role == ROLE_CMD_USERID) {
            if (untrusted_arg[0] == 0) return gpg_refuse(why, size, "an empty user ID is refused");
        } else if (st->verify && i == first && strcmp(untrusted_arg, "-") != 0) {
            if (verify_signature_arg(untrusted_arg, i, side, req, why, size) != 0) return -1;
        } else if (strcmp(untrusted_arg, "-") != 0) {
            return gpg_refuse(why, size,
                          "argument '%.64s' is refused: split GPG takes no file names, data goes through stdin and "
                          "stdout (use - or a redirection)",
                          untrusted_arg);
        }
        if (push_arg(req, untrusted_arg, why, size) != 0) return -1;
    }
    return 0;
}

int gpg_parse(int argc, const char *const *argv, enum gpg_side side, struct gpg_request *req, char *why,
              size_t why_size) {
    memset(req, 0, sizeof *req);
    req->verify_path_index = -1;
    req->in_fds[req->in_count++] = 0;
    req->out_fds[req->out_count++] = 1;
    req->out_fds[req->out_count++] = 2;
    if (argc < 0 || argc > GPG_MAX_ARGS)
        return gpg_refuse(why, why_size, "too many arguments (at most %d)", GPG_MAX_ARGS);
    struct parse_state st = {ROLE_PLAIN, 0};
    int i = 0;
    for (; i < argc; i++)
        if (has_control(argv[i])) return gpg_refuse(why, why_size, "argument %d is refused: it contains a control character", i + 1);
    for (i = 0; i < argc; i++) {
        const char *untrusted_arg = argv[i];
        if (strcmp(untrusted_arg, "--") == 0) {
            i++;
            break;
        }
        if (untrusted_arg[0] != '-' || untrusted_arg[1] == 0) break;   /* the first non-option ends the options */
        if (untrusted_arg[1] == '-') {
            const char *untrusted_name = untrusted_arg + 2;
            const char *eq = strchr(untrusted_name, '=');
            size_t len = eq != NULL ? (size_t)(eq - untrusted_name) : strlen(untrusted_name);
            const struct gpg_option *o = gpg_find_long(untrusted_name, len);
            if (o == NULL) return gpg_refuse_unknown_long(untrusted_name, len, why, why_size);
            const char *shown = o->flag;
            const char *value = NULL;
            if (o->value == VALUE_NONE) {
                if (eq != NULL) return gpg_refuse(why, why_size, "%s is refused with a value: it takes none", shown);
            } else if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return gpg_refuse(why, why_size, "%s needs a value", shown);
            }
            if (apply_option(o, shown, value, req, &st, why, why_size) != 0) return -1;
            continue;
        }
        /* A cluster of short options: -bas, -r KEY, -rKEY, -o-. */
        for (const char *p = untrusted_arg + 1; *p; p++) {
            const struct gpg_option *o = gpg_find_short(*p);
            if (o == NULL) {
                if (*p == '-') return gpg_refuse(why, why_size, "%.64s is refused: malformed option", untrusted_arg);
                return gpg_refuse(why, why_size, "-%c is refused: not on split GPG's option allow-list", *p);
            }
            char shown[8];
            snprintf(shown, sizeof shown, "-%c", *p);
            const char *value = NULL;
            if (o->value != VALUE_NONE) {
                if (p[1] != 0) value = p + 1;
                else if (i + 1 < argc) value = argv[++i];
                else return gpg_refuse(why, why_size, "%s needs a value", shown);
            }
            if (apply_option(o, shown, value, req, &st, why, why_size) != 0) return -1;
            if (value != NULL) break;
        }
    }
    return check_positionals(argc, argv, i, side, req, &st, why, why_size);
}
