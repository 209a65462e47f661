/*
 * seccomp.c - the jailer's seccomp filter, built from the profile the plugin
 * passes in the spec (config/seccomp/native-domain.json, flattened to
 * "seccomp=ACTION ERRNO SYSCALL [ARG OP VALUE]..." items). Split from
 * jailer.c so each file keeps one job; see jailer.c for why the jailer is C.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jailer.h"

/* ------------------------------------------------------------- seccomp */

static uint32_t seccomp_action(const char *name, int err) {
    if (strcmp(name, "allow") == 0) return SCMP_ACT_ALLOW;
    if (strcmp(name, "errno") == 0) return SCMP_ACT_ERRNO((uint16_t)err);
    if (strcmp(name, "kill_process") == 0) return SCMP_ACT_KILL_PROCESS;
    if (strcmp(name, "kill_thread") == 0) return SCMP_ACT_KILL_THREAD;
    if (strcmp(name, "trap") == 0) return SCMP_ACT_TRAP;
    if (strcmp(name, "log") == 0) return SCMP_ACT_LOG;
    die(EINVAL, "seccomp profile", "unknown action '%s'", name);
    return 0;
}

static enum scmp_compare seccomp_op(const char *op) {
    static const struct { const char *n; enum scmp_compare c; } ops[] = {
        {"eq", SCMP_CMP_EQ}, {"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT}, {"le", SCMP_CMP_LE},
        {"gt", SCMP_CMP_GT}, {"ge", SCMP_CMP_GE}, {"masked_eq", SCMP_CMP_MASKED_EQ}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i].n) == 0) return ops[i].c;
    die(EINVAL, "seccomp profile", "unknown argument operator '%s'", op);
    return SCMP_CMP_EQ;
}

/* Builds the filter before any namespace work, so a bad profile fails early.
 * Rule syntax (one "seccomp=" entry each, produced by the plugin from
 * config/seccomp/native-domain.json): ACTION,ERRNO,SYSCALL[,IDX:OP:VALUE[:MASK]]...
 * Syscall names unknown on this architecture are skipped: profiles are
 * written for several architectures. */
scmp_filter_ctx build_seccomp(void) {
    const char *def = get("seccomp_default");
    if (!def) return NULL;
    scmp_filter_ctx ctx = seccomp_init(seccomp_action(def, EPERM));
    if (!ctx) die(ENOMEM, "seccomp_init", NULL);
    for (int i = 0;; i++) {
        const char *rule = get_nth("seccomp", i);
        if (!rule) break;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", rule);
        char *save = NULL;
        char *action = strtok_r(buf, ",", &save);
        char *errstr = strtok_r(NULL, ",", &save);
        char *name = strtok_r(NULL, ",", &save);
        if (!action || !errstr || !name) die(EINVAL, "seccomp profile", "malformed rule '%s'", rule);
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) continue;
        struct scmp_arg_cmp args[6];
        unsigned nargs = 0;
        for (char *a; (a = strtok_r(NULL, ",", &save)) != NULL;) {
            if (nargs == 6) die(EINVAL, "seccomp profile", "too many argument filters in '%s'", rule);
            char *s2 = NULL;
            char *idx = strtok_r(a, ":", &s2), *op = strtok_r(NULL, ":", &s2);
            char *val = strtok_r(NULL, ":", &s2), *mask = strtok_r(NULL, ":", &s2);
            if (!idx || !op || !val) die(EINVAL, "seccomp profile", "malformed argument filter in '%s'", rule);
            enum scmp_compare c = seccomp_op(op);
            scmp_datum_t v = strtoull(val, NULL, 0);
            if (c == SCMP_CMP_MASKED_EQ)
                args[nargs++] = (struct scmp_arg_cmp){(unsigned)atoi(idx), c, mask ? strtoull(mask, NULL, 0) : v, v};
            else
                args[nargs++] = (struct scmp_arg_cmp){(unsigned)atoi(idx), c, v, 0};
        }
        int rc = seccomp_rule_add_array(ctx, seccomp_action(action, atoi(errstr)), nr, nargs, args);
        if (rc < 0 && rc != -EEXIST) die(-rc, "seccomp rule", "%s", rule);
    }
    return ctx;
}
