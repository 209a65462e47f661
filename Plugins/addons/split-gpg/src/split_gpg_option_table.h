/*
 * split_gpg_option_table.h - inside the option parser: the allow-list as
 * data (split_gpg_option_table.c) and the checks of option values
 * (split_gpg_option_values.c), used by the parser (split_gpg_options.c).
 */
#ifndef SPLIT_GPG_OPTION_TABLE_H
#define SPLIT_GPG_OPTION_TABLE_H

#include <stddef.h>

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
    VALUE_LIST_OPTIONS,
    VALUE_VERIFY_OPTIONS,
};

struct gpg_option {
    const char *flag;   /* "--armor": what gpg is given */
    char short_name;    /* 0 if none */
    unsigned char role;
    unsigned char value;
};

/* An allowed option by its exact long name (len bytes, no "--"), or NULL. */
const struct gpg_option *gpg_find_long(const char *name, size_t len);
/* An allowed option by its short letter, or NULL. */
const struct gpg_option *gpg_find_short(char c);
/* -1, with why saying why a long option not on the list is refused. */
int gpg_refuse_unknown_long(const char *untrusted_name, size_t len, char *why, size_t size);
/* 0 if the value suits the option, else -1 with why. */
int gpg_check_value(const struct gpg_option *o, const char *shown, const char *untrusted_value, char *why, size_t size);
int gpg_is_decimal(const char *s, size_t max_digits);
/* Formats why and returns -1: `return gpg_refuse(why, size, ...)`. */
int gpg_refuse(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
