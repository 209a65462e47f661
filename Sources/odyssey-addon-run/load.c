/* load.c - opens one add-on through the ABI exactly as odysseyd does:
 * dlopen, the entry handshake, the factory by name, its open(). */
#define _GNU_SOURCE
#include "runner.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int fail(const struct addon_entry *e, const char *what) {
    fprintf(stderr, "odyssey-addon-run: add-on %s: %s\n", e->id, what);
    return -1;
}

int addon_load(const struct runner_env *env, const struct addon_entry *e, struct loaded_addon *out) {
    if (strchr(e->lib, '/') != NULL || e->lib[0] == '.') return fail(e, "library name in the index is not a plain file name");
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/lib/%s", env->view, e->lib);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "odyssey-addon-run: add-on %s: %s\n", e->id, dlerror());
        return -1;
    }
    ody_entry_fn entry = (ody_entry_fn)dlsym(h, ODY_ENTRY_SYMBOL);
    if (entry == NULL) return fail(e, "no " ODY_ENTRY_SYMBOL " symbol");

    void *ctx = runner_host_ctx(env, e->id, e->factory);
    ody_entry_request req = {
        .struct_size = sizeof req, .abi_major = ODY_ABI_MAJOR, .abi_minor = ODY_ABI_MINOR,
        .flags = 0, .host = runner_host_services(), .host_ctx = ctx,
    };
    ody_plugin_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ody_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    int32_t rc = entry(&req, &info, &err);
    if (rc != ODY_OK) {
        fprintf(stderr, "odyssey-addon-run: add-on %s refused the handshake: %s (%s)\n", e->id, err.message, ody_status_name(rc));
        return -1;
    }
    if (info.abi_major != ODY_ABI_MAJOR || info.abi_minor > ODY_ABI_MINOR) return fail(e, "ABI version mismatch");
    if (info.id == NULL || strcmp(info.id, e->id) != 0) return fail(e, "its id does not match the index");

    const ody_factory *factory = NULL;
    for (uint32_t i = 0; i < info.factory_count && info.factories != NULL; i++) {
        const ody_factory *f = info.factories[i];
        if (f != NULL && f->struct_size >= sizeof(ody_factory) && f->kind == ODY_KIND_ADDON &&
            f->name != NULL && strcmp(f->name, e->factory) == 0)
            factory = f;
    }
    if (factory == NULL) return fail(e, "no add-on factory of that name");
    const ody_addon_ops *ops = factory->ops;
    if (ops == NULL || ops->struct_size < offsetof(ody_addon_ops, on_event) + sizeof ops->on_event || ops->open == NULL)
        return fail(e, "its ops table is too small or has no open");
    if (ops->version > info.abi_minor) return fail(e, "its ops table is newer than the negotiated ABI");

    ody_instance_args args = {
        .struct_size = sizeof args, .flags = 0, .host = runner_host_services(), .host_ctx = ctx,
        .instance_name = e->factory,
    };
    ody_addon *instance = NULL;
    rc = ops->open(&args, &instance, &err);
    if (rc != ODY_OK) {
        fprintf(stderr, "odyssey-addon-run: add-on %s: open: %s (%s)\n", e->id, err.message, ody_status_name(rc));
        return -1;
    }
    out->ops = ops;
    out->instance = instance;
    snprintf(out->factory, sizeof out->factory, "%s", e->factory);
    return 0;
}

void addon_unload(struct loaded_addon *a) {
    if (a->ops != NULL && a->ops->close != NULL && a->instance != NULL) a->ops->close(a->instance, 0);
    a->instance = NULL;
}
