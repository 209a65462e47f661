/*
 * split_gpg_options.c - which gpg options a domain may pass to the vault.
 *
 * The list is Qubes split-gpg's (qubes-app-linux-split-gpg, gpg-common.h:
 * the options both gpg-client and gpg-server accept), rebuilt here as data:
 *   short: -b -a -c -d -e -k -K -n -N -o -q -r -R -s -t -u -v
 *   long:  the table below, 92 names: the 91 Qubes accepts (73 of its own
 *          and 18 long spellings of the short options) and --quiet, the
 *          long spelling of -q. Options Qubes lists but refuses (--cipher-algo,
 *          --display, --use-agent, --utf8-strings...) are left out.
 * What is deliberately absent: everything that changes the keyring or the
 * trust database (--import, --gen-key, --quick-gen-key, --edit-key,
 * --delete-key(s), --sign-key, --lsign-key, --passwd, --export-secret-keys,
 * --update-trustdb...), everything that reaches the network (keyservers,
 * --auto-key-locate, auto-key-retrieve), everything that names a file in the
 * vault (--output FILE, --homedir, --options, --keyring, --load-extension),
 * and everything that runs a program (--exec-path, --photo-viewer,
 * show-photos).
 *
 * Rules, as Qubes:
 *  - a long option must be spelled in full (gpg itself would accept an
 *    unambiguous prefix; the vault does not, so the list is the whole truth);
 *  - -o/--output only with "-": results come back through stdout;
 *  - the first non-option argument ends the options; a non-option argument
 *    must be "-" (data goes through stdin and stdout, never a file in the
 *    vault), except user IDs after the key-listing commands (-k, -K,
 *    --list-sigs, --fingerprint, --export...) and the signature after
 *    --verify: the client opens that file itself and sends it as one more
 *    relayed descriptor, /dev/fd/N, which is all the vault accepts there;
 *  - key-listing commands and data commands are not mixed.
 * The vault then runs gpg with the options rewritten to their full long
 * names, each value joined to its option ("--recipient=KEY"), and "--"
 * before the positional arguments, so nothing from the domain can become a
 * different option on the way.
 */
#include "split_gpg_options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum role {
    ROLE_PLAIN,      /* a modifier */
    ROLE_CMD_DATA,   /* a command reading data: positional arguments must be "-" */
    ROLE_CMD_USERID, /* a key-listing command: positional arguments are user IDs */
    ROLE_CMD_VERIFY, /* --verify: the first positional argument may be the signature */
    ROLE_FD_OUT,     /* gpg writes to this descriptor: relayed vault -> client */
    ROLE_FD_IN,      /* gpg reads from this descriptor: relayed client -> vault */
};

enum value_check {
    VALUE_NONE,           /* takes no value */
    VALUE_TEXT,           /* free text (no control characters: checked for every argument) */
    VALUE_WORDS,          /* algorithm names and lists of them */
    VALUE_NUMBER,         /* decimal */
    VALUE_FD,             /* a descriptor number 0..GPG_MAX_FD_VALUE */
    VALUE_DASH,           /* only "-" */
    VALUE_TRUST_MODEL,
    VALUE_KEYID_FORMAT,
    VALUE_KEYID,          /* hex key ID or fingerprint */
    VALUE_LIST_OPTIONS,
    VALUE_VERIFY_OPTIONS,
};

struct gpg_option {
    const char *flag;   /* "--armor": what gpg is given */
    char short_name;    /* 0 if none */
    unsigned char role;
    unsigned char value;
};

/* Sorted by name. */
static const struct gpg_option options[] = {
    {"--always-trust", 0, ROLE_PLAIN, VALUE_NONE},
    {"--armor", 'a', ROLE_PLAIN, VALUE_NONE},
    {"--attribute-fd", 0, ROLE_FD_OUT, VALUE_FD},
    {"--batch", 0, ROLE_PLAIN, VALUE_NONE},
    {"--cert-notation", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--clear-sign", 0, ROLE_CMD_DATA, VALUE_NONE},
    {"--clearsign", 0, ROLE_CMD_DATA, VALUE_NONE},
    {"--command-fd", 0, ROLE_FD_IN, VALUE_FD},
    {"--comment", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--compress-algo", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--decrypt", 'd', ROLE_CMD_DATA, VALUE_NONE},
    {"--default-recipient-self", 0, ROLE_PLAIN, VALUE_NONE},
    {"--detach-sign", 'b', ROLE_CMD_DATA, VALUE_NONE},
    {"--digest-algo", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--dry-run", 'n', ROLE_PLAIN, VALUE_NONE},
    {"--emit-version", 0, ROLE_PLAIN, VALUE_NONE},
    {"--enable-progress-filter", 0, ROLE_PLAIN, VALUE_NONE},
    {"--encrypt", 'e', ROLE_CMD_DATA, VALUE_NONE},
    {"--encrypt-to", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--exit-on-status-write-error", 0, ROLE_PLAIN, VALUE_NONE},
    {"--export", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--export-ssh-key", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--fingerprint", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--fixed-list-mode", 0, ROLE_PLAIN, VALUE_NONE},
    {"--gnupg", 0, ROLE_PLAIN, VALUE_NONE},
    {"--hidden-encrypt-to", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--hidden-recipient", 'R', ROLE_PLAIN, VALUE_TEXT},
    {"--keyid-format", 0, ROLE_PLAIN, VALUE_KEYID_FORMAT},
    {"--list-config", 0, ROLE_CMD_DATA, VALUE_NONE},
    {"--list-key", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--list-keys", 'k', ROLE_CMD_USERID, VALUE_NONE},
    {"--list-only", 0, ROLE_PLAIN, VALUE_NONE},
    {"--list-options", 0, ROLE_PLAIN, VALUE_LIST_OPTIONS},
    {"--list-public-keys", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--list-secret-keys", 'K', ROLE_CMD_USERID, VALUE_NONE},
    {"--list-sig", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--list-sigs", 0, ROLE_CMD_USERID, VALUE_NONE},
    {"--local-user", 'u', ROLE_PLAIN, VALUE_TEXT},
    {"--logger-fd", 0, ROLE_FD_OUT, VALUE_FD},
    {"--max-output", 0, ROLE_PLAIN, VALUE_NUMBER},
    {"--no-auto-check-trustdb", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-comments", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-default-recipient", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-emit-version", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-encrypt-to", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-force-v3-sigs", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-force-v4-certs", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-greeting", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-secmem-warning", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-skip-hidden-recipients", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-throw-keyids", 0, ROLE_PLAIN, VALUE_NONE},
    {"--no-verbose", 0, ROLE_PLAIN, VALUE_NONE},
    {"--openpgp", 0, ROLE_PLAIN, VALUE_NONE},
    {"--output", 'o', ROLE_PLAIN, VALUE_DASH},
    {"--personal-cipher-preferences", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--personal-compress-preferences", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--personal-digest-preferences", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--pgp6", 0, ROLE_PLAIN, VALUE_NONE},
    {"--pgp7", 0, ROLE_PLAIN, VALUE_NONE},
    {"--pgp8", 0, ROLE_PLAIN, VALUE_NONE},
    {"--quiet", 'q', ROLE_PLAIN, VALUE_NONE},
    {"--recipient", 'r', ROLE_PLAIN, VALUE_TEXT},
    {"--rfc2440", 0, ROLE_PLAIN, VALUE_NONE},
    {"--rfc4880", 0, ROLE_PLAIN, VALUE_NONE},
    {"--s2k-cipher-algo", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--s2k-count", 0, ROLE_PLAIN, VALUE_NUMBER},
    {"--s2k-digest-algo", 0, ROLE_PLAIN, VALUE_WORDS},
    {"--s2k-mode", 0, ROLE_PLAIN, VALUE_NUMBER},
    {"--sender", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--set-filename", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--set-notation", 'N', ROLE_PLAIN, VALUE_TEXT},
    {"--sig-notation", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--sign", 's', ROLE_CMD_DATA, VALUE_NONE},
    {"--skip-hidden-recipients", 0, ROLE_PLAIN, VALUE_NONE},
    {"--status-fd", 0, ROLE_FD_OUT, VALUE_FD},
    {"--store", 0, ROLE_CMD_DATA, VALUE_NONE},
    {"--symmetric", 'c', ROLE_CMD_DATA, VALUE_NONE},
    {"--textmode", 't', ROLE_PLAIN, VALUE_NONE},
    {"--throw-keyids", 0, ROLE_PLAIN, VALUE_NONE},
    {"--trust-model", 0, ROLE_PLAIN, VALUE_TRUST_MODEL},
    {"--trusted-key", 0, ROLE_PLAIN, VALUE_KEYID},
    {"--try-all-secrets", 0, ROLE_PLAIN, VALUE_NONE},
    {"--try-secret-key", 0, ROLE_PLAIN, VALUE_TEXT},
    {"--unwrap", 0, ROLE_PLAIN, VALUE_NONE},
    {"--verbose", 'v', ROLE_PLAIN, VALUE_NONE},
    {"--verify", 0, ROLE_CMD_VERIFY, VALUE_NONE},
    {"--verify-options", 0, ROLE_PLAIN, VALUE_VERIFY_OPTIONS},
    {"--version", 0, ROLE_PLAIN, VALUE_NONE},
    {"--with-colons", 0, ROLE_PLAIN, VALUE_NONE},
    {"--with-fingerprint", 0, ROLE_PLAIN, VALUE_NONE},
    {"--with-keygrip", 0, ROLE_PLAIN, VALUE_NONE},
    {"--with-secret", 0, ROLE_PLAIN, VALUE_NONE},
};
#define OPTION_COUNT (sizeof options / sizeof options[0])

size_t gpg_allowed_long_option_count(void) { return OPTION_COUNT; }

/* Names users reach for that stay in the vault: refused with a message
 * that says why, rather than "not allowed" alone. */
static const char *const key_management[] = {
    "import", "gen-key", "generate-key", "full-gen-key", "full-generate-key", "quick-gen-key",
    "quick-generate-key", "quick-add-key", "quick-add-uid", "quick-revoke-uid", "quick-set-expire",
    "quick-set-primary-uid", "quick-sign-key", "quick-lsign-key", "edit-key", "delete-key", "delete-keys",
    "delete-secret-key", "delete-secret-keys", "delete-secret-and-public-key", "sign-key", "lsign-key",
    "passwd", "gen-revoke", "generate-revocation", "desig-revoke", "export-secret-keys",
    "export-secret-subkeys", "import-ownertrust", "export-ownertrust", "update-trustdb", "check-trustdb",
    "recv-keys", "receive-keys", "send-keys", "refresh-keys", "search-keys", "fetch-keys", "card-edit",
    "edit-card", "card-status", "change-pin",
};

static int refuse(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

static const struct gpg_option *find_long(const char *name, size_t len) {
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(options[i].flag + 2) == len && memcmp(options[i].flag + 2, name, len) == 0) return &options[i];
    return NULL;
}

static const struct gpg_option *find_short(char c) {
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].short_name == c) return &options[i];
    return NULL;
}

/* Why an unknown long option is refused: key management, an abbreviation
 * of an allowed option, or simply not on the list. */
static int refuse_long(const char *untrusted_name, size_t len, char *why, size_t size) {
    int shown = len > 64 ? 64 : (int)len;
    for (size_t i = 0; i < sizeof key_management / sizeof key_management[0]; i++)
        if (strlen(key_management[i]) == len && memcmp(key_management[i], untrusted_name, len) == 0)
            return refuse(why, size, "--%.*s is refused: key management is done in the vault itself, not through split GPG",
                          shown, untrusted_name);
    for (size_t i = 0; i < OPTION_COUNT && len > 0; i++)
        if (strncmp(options[i].flag + 2, untrusted_name, len) == 0)
            return refuse(why, size, "--%.*s is refused: long options must be spelled in full (%s?)", shown,
                          untrusted_name, options[i].flag);
    return refuse(why, size, "--%.*s is refused: not on split GPG's option allow-list", shown, untrusted_name);
}

static int is_decimal(const char *s, size_t max_digits) {
    size_t n = strlen(s);
    if (n == 0 || n > max_digits) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int only_chars(const char *s, const char *allowed) {
    if (s[0] == 0) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(allowed, *s) != NULL))
            return 0;
    return 1;
}

static int one_of(const char *s, const char *const *words) {
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return 1;
    return 0;
}

/* --list-options / --verify-options: a list of names separated by commas or
 * spaces, each possibly "no-" negated. Names that run a program
 * (show-photos) or reach the network (auto-key-retrieve, pka-lookups) are
 * accepted only negated; "name=value" forms are refused (the one that takes
 * a value, show-sig-subpackets=N, is rarely needed). */
static const char *const list_names[] = {
    "show-photos", "show-usage", "show-policy-urls", "show-notations", "show-std-notations",
    "show-standard-notations", "show-user-notations", "show-keyserver-urls", "show-uid-validity",
    "show-unusable-uids", "show-unusable-subkeys", "show-unusable-sigs", "show-keyring", "show-sig-expire",
    "show-sig-subpackets", "show-only-fpr-mbox", "show-primary-uid-only", "show-pref", "show-pref-verbose",
    "show-ownertrust", "sort-sigs", NULL,
};
static const char *const verify_names[] = {
    "show-photos", "show-policy-urls", "show-notations", "show-std-notations", "show-standard-notations",
    "show-user-notations", "show-keyserver-urls", "show-uid-validity", "show-unusable-uids",
    "show-primary-uid-only", "pka-lookups", "pka-trust-increase", "auto-key-retrieve", NULL,
};
static const char *const only_negated[] = {"show-photos", "auto-key-retrieve", "pka-lookups", NULL};

static int check_option_list(const char *opt, const char *untrusted_value, const char *const *names, char *why,
                             size_t size) {
    if (strcmp(untrusted_value, "help") == 0) return 0;
    char copy[256];
    if (strlen(untrusted_value) >= sizeof copy)
        return refuse(why, size, "%s value is refused: too long", opt);
    memcpy(copy, untrusted_value, strlen(untrusted_value) + 1);
    char *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
        int negated = strncmp(t, "no-", 3) == 0;
        const char *name = negated ? t + 3 : t;
        if (!one_of(name, names))
            return refuse(why, size, "%s %.64s is refused: not one of the allowed %s values", opt, t, opt);
        if (!negated && one_of(name, only_negated))
            return refuse(why, size, "%s %.64s is refused: it runs a program or reaches the network", opt, t);
    }
    return 0;
}

static int check_value(const struct gpg_option *o, const char *shown, const char *untrusted_value, char *why,
                       size_t size) {
    static const char *const trust_models[] = {"pgp", "classic", "tofu", "tofu+pgp", "direct", "always", "auto", NULL};
    static const char *const keyid_formats[] = {"none", "short", "0xshort", "long", "0xlong", NULL};
    switch (o->value) {
    case VALUE_TEXT:
        if (untrusted_value[0] == 0) return refuse(why, size, "%s needs a non-empty value", shown);
        return 0;
    case VALUE_WORDS:
        if (!only_chars(untrusted_value, " ,._+-"))
            return refuse(why, size, "%s %.64s is refused: expected algorithm names", shown, untrusted_value);
        return 0;
    case VALUE_NUMBER:
        if (!is_decimal(untrusted_value, 9))
            return refuse(why, size, "%s %.64s is refused: expected a decimal number", shown, untrusted_value);
        return 0;
    case VALUE_FD:
        if (!is_decimal(untrusted_value, 4) || atoi(untrusted_value) > GPG_MAX_FD_VALUE)
            return refuse(why, size, "%s %.64s is refused: expected a descriptor number 0..%d", shown, untrusted_value,
                          GPG_MAX_FD_VALUE);
        return 0;
    case VALUE_DASH:
        if (strcmp(untrusted_value, "-") != 0)
            return refuse(why, size, "%s %.64s is refused: output goes to stdout only (%s -)", shown, untrusted_value,
                          shown);
        return 0;
    case VALUE_TRUST_MODEL:
        if (!one_of(untrusted_value, trust_models))
            return refuse(why, size, "%s %.64s is refused: not a trust model", shown, untrusted_value);
        return 0;
    case VALUE_KEYID_FORMAT:
        if (!one_of(untrusted_value, keyid_formats))
            return refuse(why, size, "%s %.64s is refused: not a key ID format", shown, untrusted_value);
        return 0;
    case VALUE_KEYID: {
        const char *hex = strncmp(untrusted_value, "0x", 2) == 0 ? untrusted_value + 2 : untrusted_value;
        size_t n = strlen(hex);
        if (n < 8 || n > 40 || strspn(hex, "0123456789abcdefABCDEF") != n)
            return refuse(why, size, "%s %.64s is refused: expected a hex key ID or fingerprint", shown, untrusted_value);
        return 0;
    }
    case VALUE_LIST_OPTIONS: return check_option_list(o->flag, untrusted_value, list_names, why, size);
    case VALUE_VERIFY_OPTIONS: return check_option_list(o->flag, untrusted_value, verify_names, why, size);
    default: return 0;
    }
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
        return refuse(why, size, "too many options (split GPG carries at most %d bytes of arguments)", GPG_COMMAND_MAX);
    req->gpg_args[req->gpg_argc++] = arg;
    return 0;
}

static int add_fd(struct gpg_request *req, int output, int fd, const char *shown, char *why, size_t size) {
    int *list = output ? req->out_fds : req->in_fds;
    int *count = output ? &req->out_count : &req->in_count;
    if (fd_listed(output ? req->in_fds : req->out_fds, output ? req->in_count : req->out_count, fd))
        return refuse(why, size, "%s %d is refused: descriptor %d cannot be both read and written by gpg", shown, fd, fd);
    if (fd_listed(list, *count, fd)) return 0;
    if (req->in_count + req->out_count >= GPG_MAX_FDS)
        return refuse(why, size, "%s %d is refused: at most %d descriptors are relayed", shown, fd, GPG_MAX_FDS);
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
    if (o->value != VALUE_NONE && check_value(o, shown, untrusted_value, why, size) != 0) return -1;
    if (o->role == ROLE_CMD_DATA || o->role == ROLE_CMD_USERID || o->role == ROLE_CMD_VERIFY) {
        int userid = o->role == ROLE_CMD_USERID;
        if (st->command_role != ROLE_PLAIN && (st->command_role == ROLE_CMD_USERID) != userid)
            return refuse(why, size, "%s is refused: conflicting commands (key listing and data commands are not mixed)",
                          shown);
        if (st->command_role == ROLE_PLAIN || userid) st->command_role = o->role;
        if (o->role == ROLE_CMD_VERIFY) st->verify = 1;
    }
    if (o->role == ROLE_FD_OUT || o->role == ROLE_FD_IN) {
        int fd = atoi(untrusted_value);
        if (o->role == ROLE_FD_OUT && fd == 0)
            return refuse(why, size, "%s 0 is refused: descriptor 0 is gpg's input", shown);
        if (o->role == ROLE_FD_IN && (fd == 1 || fd == 2))
            return refuse(why, size, "%s %d is refused: descriptor %d is gpg's output", shown, fd, fd);
        if (add_fd(req, o->role == ROLE_FD_OUT, fd, shown, why, size) != 0) return -1;
    }
    /* Rewritten: the full long name from the table (never the domain's
     * spelling), and the value, checked above, after "=". */
    if (o->value == VALUE_NONE) return push_arg(req, o->flag, why, size);
    size_t room = sizeof req->text - req->text_used;
    int n = snprintf(req->text + req->text_used, room, "%s=%s", o->flag, untrusted_value);
    if (n < 0 || (size_t)n >= room) return refuse(why, size, "%s is refused: the options are too long", shown);
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
        if (!is_decimal(num, 4) || atoi(num) < 3 || atoi(num) > GPG_MAX_FD_VALUE)
            return refuse(why, size, "--verify %.64s is refused: expected /dev/fd/N with 3 <= N <= %d", untrusted_arg,
                          GPG_MAX_FD_VALUE);
        if (side == GPG_SIDE_CLIENT) req->verify_path_index = index;
        return add_fd(req, 0, atoi(num), "--verify", why, size);
    }
    if (side == GPG_SIDE_VAULT)
        return refuse(why, size, "argument %.64s is refused: the vault takes the signature only as /dev/fd/N", untrusted_arg);
    req->verify_path_index = index;
    return 0;
}

static int check_positionals(int argc, const char *const *argv, int first, enum gpg_side side,
                             struct gpg_request *req, const struct parse_state *st, char *why, size_t size) {
    if (push_arg(req, "--", why, size) != 0) return -1;
    for (int i = first; i < argc; i++) {
        const char *untrusted_arg = argv[i];
        if (st->command_role == ROLE_CMD_USERID) {
            if (untrusted_arg[0] == 0) return refuse(why, size, "an empty user ID is refused");
        } else if (st->verify && i == first && strcmp(untrusted_arg, "-") != 0) {
            if (verify_signature_arg(untrusted_arg, i, side, req, why, size) != 0) return -1;
        } else if (strcmp(untrusted_arg, "-") != 0) {
            return refuse(why, size,
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
        return refuse(why, why_size, "too many arguments (at most %d)", GPG_MAX_ARGS);
    struct parse_state st = {ROLE_PLAIN, 0};
    int i = 0;
    for (; i < argc; i++)
        if (has_control(argv[i])) return refuse(why, why_size, "argument %d is refused: it contains a control character", i + 1);
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
            const struct gpg_option *o = find_long(untrusted_name, len);
            if (o == NULL) return refuse_long(untrusted_name, len, why, why_size);
            const char *shown = o->flag;
            const char *value = NULL;
            if (o->value == VALUE_NONE) {
                if (eq != NULL) return refuse(why, why_size, "%s is refused with a value: it takes none", shown);
            } else if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return refuse(why, why_size, "%s needs a value", shown);
            }
            if (apply_option(o, shown, value, req, &st, why, why_size) != 0) return -1;
            continue;
        }
        /* A cluster of short options: -bas, -r KEY, -rKEY, -o-. */
        for (const char *p = untrusted_arg + 1; *p; p++) {
            const struct gpg_option *o = find_short(*p);
            if (o == NULL) {
                if (*p == '-') return refuse(why, why_size, "%.64s is refused: malformed option", untrusted_arg);
                return refuse(why, why_size, "-%c is refused: not on split GPG's option allow-list", *p);
            }
            char shown[8];
            snprintf(shown, sizeof shown, "-%c", *p);
            const char *value = NULL;
            if (o->value != VALUE_NONE) {
                if (p[1] != 0) value = p + 1;
                else if (i + 1 < argc) value = argv[++i];
                else return refuse(why, why_size, "%s needs a value", shown);
            }
            if (apply_option(o, shown, value, req, &st, why, why_size) != 0) return -1;
            if (value != NULL) break;
        }
    }
    return check_positionals(argc, argv, i, side, req, &st, why, why_size);
}
