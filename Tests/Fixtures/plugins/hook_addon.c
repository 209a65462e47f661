/*
 * hook_addon.c - a test add-on with an event hook: on_event appends
 * "EVENT DOMAIN" to the file named by its config key "log". Built with
 * -DLIE, describe() names a service its manifest does not (refused).
 */
#include <odyssey_plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

struct ody_addon { char log[512]; };

#ifdef LIE
static const ody_addon_service svc = {sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, "test.Other"};
#else
static const ody_addon_service svc = {sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, "test.Hooked"};
#endif
static const ody_addon_service *const services[] = {&svc};
static const ody_addon_desc desc = {sizeof(ody_addon_desc), 1, services, NULL, NULL, NULL};

static int32_t hook_open(const ody_instance_args *args, ody_addon **out, ody_error *err) {
    struct ody_addon *a = calloc(1, sizeof *a);
    if (a == NULL) return ody_error_set(err, ODY_E_NO_MEMORY, 0, "oom");
    size_t needed = 0;
    if (args->host->config_get(args->host_ctx, "log", a->log, sizeof a->log, &needed, 0) != ODY_OK) a->log[0] = 0;
    *out = a;
    return ODY_OK;
}
static void hook_close(ody_addon *a, uint32_t flags) { (void)flags; free(a); }
static const ody_addon_desc *hook_describe(uint32_t flags) { (void)flags; return &desc; }
static void hook_event(ody_addon *a, const ody_event *e, uint32_t flags) {
    (void)flags;
    FILE *f = a->log[0] ? fopen(a->log, "a") : NULL;
    if (f == NULL) return;
    fprintf(f, "%s %s\n", e->name, e->domain);
    fclose(f);
}

static const ody_addon_ops ops = {
    .struct_size = sizeof(ody_addon_ops), .version = ODY_ABI_MINOR, .open = hook_open, .close = hook_close,
    .describe = hook_describe, .run_service = NULL, .on_event = hook_event, .run_command = NULL,
};
static const ody_factory factory = {sizeof(ody_factory), ODY_KIND_ADDON, "hooks",
                                    ODY_ADDON_CAP_DOMAIN_SIDE | ODY_ADDON_CAP_EVENT_HOOKS, &ops};
static const ody_factory *const factories[] = {&factory};

EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    (void)err;
    info->abi_major = ODY_ABI_MAJOR;
    info->abi_minor = ody_negotiate_minor(req->abi_minor);
    info->id = "hook-addon";
    info->version = "0.0.1";
    info->license = "MIT";
    info->description = "test add-on with an event hook";
    info->factory_count = 1;
    info->factories = factories;
    return ODY_OK;
}
