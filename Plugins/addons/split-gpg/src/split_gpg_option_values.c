/* split_gpg_option_values.c - what an allowed option's value may be. */
#include "split_gpg_option_table.h"

#include <stdlib.h>
#include <string.h>

#include "split_gpg_options.h"

int gpg_is_decimal(const char *s, size_t max_digits) {
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
        return gpg_refuse(why, size, "%s value is refused: too long", opt);
    memcpy(copy, untrusted_value, strlen(untrusted_value) + 1);
    char *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
        int negated = strncmp(t, "no-", 3) == 0;
        const char *name = negated ? t + 3 : t;
        if (!one_of(name, names))
            return gpg_refuse(why, size, "%s %.64s is refused: not one of the allowed %s values", opt, t, opt);
        if (!negated && one_of(name, only_negated))
            return gpg_refuse(why, size, "%s %.64s is refused: it runs a program or reaches the network", opt, t);
    }
    return 0;
}

int gpg_check_value(const struct gpg_option *o, const char *shown, const char *untrusted_value, char *why,
                       size_t size) {
    /* Stateless models only: tofu (and auto, which may pick it) writes the
     * vault's tofu.db, a lasting change one domain could make for all. */
    static const char *const trust_models[] = {"pgp", "classic", "direct", "always", NULL};
    static const char *const keyid_formats[] = {"none", "short", "0xshort", "long", "0xlong", NULL};
    switch (o->value) {
    case VALUE_TEXT:
        if (untrusted_value[0] == 0) return gpg_refuse(why, size, "%s needs a non-empty value", shown);
        return 0;
    case VALUE_WORDS:
        if (!only_chars(untrusted_value, " ,._+-"))
            return gpg_refuse(why, size, "%s %.64s is refused: expected algorithm names", shown, untrusted_value);
        return 0;
    case VALUE_NUMBER:
        if (!gpg_is_decimal(untrusted_value, 9))
            return gpg_refuse(why, size, "%s %.64s is refused: expected a decimal number", shown, untrusted_value);
        return 0;
    case VALUE_FD:
        if (!gpg_is_decimal(untrusted_value, 4) || atoi(untrusted_value) > GPG_MAX_FD_VALUE)
            return gpg_refuse(why, size, "%s %.64s is refused: expected a descriptor number 0..%d", shown, untrusted_value,
                          GPG_MAX_FD_VALUE);
        return 0;
    case VALUE_DASH:
        if (strcmp(untrusted_value, "-") != 0)
            return gpg_refuse(why, size, "%s %.64s is refused: output goes to stdout only (%s -)", shown, untrusted_value,
                          shown);
        return 0;
    case VALUE_TRUST_MODEL:
        if (!one_of(untrusted_value, trust_models))
            return gpg_refuse(why, size, "%s %.64s is refused: not a trust model", shown, untrusted_value);
        return 0;
    case VALUE_KEYID_FORMAT:
        if (!one_of(untrusted_value, keyid_formats))
            return gpg_refuse(why, size, "%s %.64s is refused: not a key ID format", shown, untrusted_value);
        return 0;
    case VALUE_LIST_OPTIONS: return check_option_list(o->flag, untrusted_value, list_names, why, size);
    case VALUE_VERIFY_OPTIONS: return check_option_list(o->flag, untrusted_value, verify_names, why, size);
    default: return 0;
    }
}
