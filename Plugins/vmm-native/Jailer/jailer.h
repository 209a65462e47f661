/*
 * jailer.h - what jailer.c and seccomp.c share: the spec lookup, the one
 * error exit, and the seccomp filter builder.
 */
#ifndef ODYSSEY_JAILER_H
#define ODYSSEY_JAILER_H
#include <seccomp.h>

/* The spec's value for `key` (the nth one for repeated keys), or NULL. */
const char *get(const char *key);
const char *get_nth(const char *key, int nth);

/* Reports "native: <step> for <domain>: <ERRNO> (<detail>)" and exits. */
__attribute__((noreturn, format(printf, 3, 4)))
void die(int err, const char *step, const char *fmt, ...);

/* The filter described by the spec's seccomp items (not yet loaded). */
scmp_filter_ctx build_seccomp(void);

#endif
