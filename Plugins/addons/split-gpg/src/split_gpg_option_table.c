/*
 * split_gpg_option_table.c - which gpg options a domain may pass to the vault.
 *
 * The list is Qubes split-gpg's (qubes-app-linux-split-gpg, gpg-common.h:
 * the options both gpg-client and gpg-server accept), rebuilt here as data:
 *   short: -b -a -c -d -e -k -K -n -N -o -q -r -R -s -t -u -v
 *   long:  the table below, 91 names: the 91 Qubes accepts (73 of its own
 *          and 18 long spellings of the short options) minus --trusted-key,
 *          plus --quiet, the long spelling of -q. Options Qubes lists but
 *          refuses (--cipher-algo, --display, --use-agent, --utf8-strings...)
 *          are left out. --trusted-key is dropped although Qubes allows it:
 *          gpg writes the key's ultimate ownertrust into the vault's trustdb,
 *          so one domain could make every other domain's verifications show
 *          a key of its choice as trusted. For the same reason --trust-model
 *          takes only models that keep no state (no tofu).
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
#include "split_gpg_option_table.h"

#include <string.h>

#include "split_gpg_options.h"

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
    "edit-card", "card-status", "change-pin", "trusted-key",
};

const struct gpg_option *gpg_find_long(const char *name, size_t len) {
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(options[i].flag + 2) == len && memcmp(options[i].flag + 2, name, len) == 0) return &options[i];
    return NULL;
}

const struct gpg_option *gpg_find_short(char c) {
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].short_name == c) return &options[i];
    return NULL;
}

/* Why an unknown long option is refused: key management, an abbreviation
 * of an allowed option, or simply not on the list. */
int gpg_refuse_unknown_long(const char *untrusted_name, size_t len, char *why, size_t size) {
    int shown = len > 64 ? 64 : (int)len;
    for (size_t i = 0; i < sizeof key_management / sizeof key_management[0]; i++)
        if (strlen(key_management[i]) == len && memcmp(key_management[i], untrusted_name, len) == 0)
            return gpg_refuse(why, size, "--%.*s is refused: key management is done in the vault itself, not through split GPG",
                          shown, untrusted_name);
    for (size_t i = 0; i < OPTION_COUNT && len > 0; i++)
        if (strncmp(options[i].flag + 2, untrusted_name, len) == 0)
            return gpg_refuse(why, size, "--%.*s is refused: long options must be spelled in full (%s?)", shown,
                          untrusted_name, options[i].flag);
    return gpg_refuse(why, size, "--%.*s is refused: not on split GPG's option allow-list", shown, untrusted_name);
}
