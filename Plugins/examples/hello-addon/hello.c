/*
 * hello.c - a complete Odyssey add-on in plain C, built out of tree against
 * the installed SDK only:
 *
 *     cc $(pkg-config --cflags odyssey-plugin) -shared -fPIC \
 *        -fvisibility=hidden -o libhello-addon.so hello.c
 *
 * It provides one qrexec service, `odyssey.Hello`, and a default policy file.
 * Everything is reached through the tables in odyssey_plugin.h; the only
 * exported symbol is the entry point.
 */
#include <odyssey_plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct ody_addon { const ody_host_services *host; void *ctx; };

static const ody_addon_service hello_service = {
    sizeof(ody_addon_service), ODY_ADDON_CAP_ADMIN_SIDE, "odyssey.Hello",
};
static const ody_addon_service *const services[] = { &hello_service };

static const ody_addon_desc desc = {
    .struct_size = sizeof(ody_addon_desc),
    .service_count = 1,
    .services = services,
    .policy_file_name = "70-hello.policy",
    .policy_text = "# hello-addon: any domain may greet the admin domain\n"
                   "odyssey.Hello * @anyvm @adminvm allow\n",
    .event_hooks = NULL,
};

static int32_t hello_open(const ody_instance_args *args, ody_addon **out, ody_error *err) {
    if (args == NULL || out == NULL || args->struct_size < sizeof(ody_instance_args))
        return ody_error_set(err, ODY_E_INVALID, 0, "hello: bad open arguments");
    if (ody_check_flags(args->flags, 0, err) != ODY_OK) return ODY_E_FLAGS;
    struct ody_addon *a = calloc(1, sizeof *a);
    if (a == NULL) return ody_error_set(err, ODY_E_NO_MEMORY, 0, "hello: out of memory");
    a->host = args->host;
    a->ctx = args->host_ctx;
    *out = a;
    return ODY_OK;
}

static void hello_close(ody_addon *a, uint32_t flags) {
    (void)flags;
    free(a);
}

static const ody_addon_desc *hello_describe(uint32_t flags) {
    (void)flags;
    return &desc;
}

static int32_t hello_run(ody_addon *a, const ody_service_call *call, int32_t *exit_status,
                         uint32_t flags, ody_error *err) {
    (void)a;
    if (ody_check_flags(flags, 0, err) != ODY_OK) return ODY_E_FLAGS;
    if (call == NULL || call->struct_size < sizeof(ody_service_call) || exit_status == NULL)
        return ody_error_set(err, ODY_E_INVALID, 0, "hello: bad call");
    char line[512];
    /* The source name comes from the host (the channel), never the caller. */
    int n = snprintf(line, sizeof line, "Hello, %.63s, from %.63s!\n", call->source, call->target);
    if (n > 0 && write(call->stdout_fd, line, (size_t)n) != n)
        return ody_error_set(err, ODY_E_IO, 0, "hello: write failed");
    *exit_status = 0;
    return ODY_OK;
}

static const ody_addon_ops ops = {
    .struct_size = sizeof(ody_addon_ops),
    .version = ODY_ABI_MINOR,
    .open = hello_open,
    .close = hello_close,
    .describe = hello_describe,
    .run_service = hello_run,
    .on_event = NULL, /* unsupported: this add-on hooks no events */
};

static const ody_factory factory = {
    sizeof(ody_factory), ODY_KIND_ADDON, "hello", ODY_ADDON_CAP_ADMIN_SIDE, &ops,
};
static const ody_factory *const factories[] = { &factory };

EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    if (req == NULL || info == NULL || req->struct_size < sizeof(ody_entry_request))
        return ody_error_set(err, ODY_E_INVALID, 0, "hello: bad entry request");
    if (req->abi_major != ODY_ABI_MAJOR)
        return ody_error_set(err, ODY_E_ABI, 0, "hello: built for another ABI major");
    if (info->struct_size < sizeof(ody_plugin_info))
        return ody_error_set(err, ODY_E_ABI, 0, "hello: host's plugin info is too small");
    info->abi_major = ODY_ABI_MAJOR;
    info->abi_minor = ody_negotiate_minor(req->abi_minor);
    info->id = "hello-addon";
    info->version = "1.0.0";
    info->license = "MIT";
    info->description = "Example vendor add-on: the odyssey.Hello service";
    info->factory_count = 1;
    info->factories = factories;
    return ODY_OK;
}
