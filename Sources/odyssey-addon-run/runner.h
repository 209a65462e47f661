/* runner.h - the pieces of odyssey-addon-run (runner.c says what it is). */
#ifndef ODYSSEY_ADDON_RUN_H
#define ODYSSEY_ADDON_RUN_H

#include <limits.h>
#include <odyssey_plugin.h>

struct runner_env {
    char view[PATH_MAX];        /* the add-ons view directory */
    char index_path[PATH_MAX + 8]; /* view/index */
};

/* One index line, resolved. */
struct addon_entry {
    char id[128];
    char lib[256];
    char factory[64];
    char side[16];              /* services: "domain" or "admin"; commands: "" */
};

/* The add-on loaded and opened for one run. */
struct loaded_addon {
    const ody_addon_ops *ops;
    ody_addon *instance;
    char factory[64];
};

/* index.c: finds `kind` ("service"/"command") NAME; 0, or -1 with a message. */
int index_find(const struct runner_env *env, const char *kind, const char *name, struct addon_entry *out);

/* load.c: dlopen, entry handshake, factory, open. 0 or -1 with a message. */
int addon_load(const struct runner_env *env, const struct addon_entry *entry, struct loaded_addon *out);
void addon_unload(struct loaded_addon *a);

/* host_services.c: the host services table this process hands the add-on. */
const ody_host_services *runner_host_services(void);
void *runner_host_ctx(const struct runner_env *env, const char *id, const char *factory);

/* run.c: the two modes; both return the process exit status. */
int run_service_named(const struct runner_env *env, const char *name, const char *arg, const char *side);
int run_command_named(const struct runner_env *env, int argc, char **argv);

#endif
