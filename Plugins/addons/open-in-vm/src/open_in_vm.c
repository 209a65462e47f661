/*
 * open_in_vm.c - the open-in-vm add-on: open a file or a URL in another
 * domain, usually a fresh disposable (Qubes qvm-open-in-vm, qvm-open-in-dvm,
 * qubes.OpenInVM, qubes.OpenURL). This file is the ABI side only: what the
 * add-on provides, and which function serves a call.
 */
#include "open_in_vm_internal.h"

#include <string.h>

static const ody_addon_service open_in_vm_service = {
    sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, OPEN_SERVICE,
};
static const ody_addon_service open_url_service = {
    sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, OPEN_URL_SERVICE,
};
static const ody_addon_service *const services[] = {&open_in_vm_service, &open_url_service};

/* Identical to 70-open-in-vm.policy (the file wins when both exist). */
static const char policy_text[] =
    "# open-in-vm add-on: opening a file or a URL in a fresh disposable is allowed,\n"
    "# in any other domain it asks (Qubes' defaults).\n"
    "qubes.OpenInVM * @anyvm @dispvm allow\n"
    "qubes.OpenInVM * @anyvm @anyvm ask\n"
    "qubes.OpenURL  * @anyvm @dispvm allow\n"
    "qubes.OpenURL  * @anyvm @anyvm ask\n";

static const ody_addon_desc desc = {
    .struct_size = sizeof(ody_addon_desc),
    .service_count = 2,
    .services = services,
    .policy_file_name = "70-open-in-vm.policy",
    .policy_text = policy_text,
    .event_hooks = NULL,
};

static const ody_addon_desc *describe(uint32_t flags) {
    (void)flags;
    return &desc;
}

static int32_t run_service(ody_addon *a, const ody_service_call *call, int32_t *exit_status, uint32_t flags,
                           ody_error *err) {
    int32_t rc = addon_check_service_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    if (strncmp(call->service, OPEN_SERVICE, sizeof call->service) == 0)
        *exit_status = open_service(a, call);
    else if (strncmp(call->service, OPEN_URL_SERVICE, sizeof call->service) == 0)
        *exit_status = url_service(a, call);
    else
        return ody_error_set(err, ODY_E_UNSUPPORTED, 0, "open-in-vm provides qubes.OpenInVM and qubes.OpenURL only");
    return ODY_OK;
}

static int32_t run_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status, uint32_t flags,
                           ody_error *err) {
    int32_t rc = addon_check_command_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    *exit_status = open_command(a, call);
    return ODY_OK;
}

static const ody_addon_ops ops = {
    .struct_size = sizeof(ody_addon_ops),
    .version = ODY_ABI_MINOR,
    .open = addon_open,
    .close = addon_close,
    .describe = describe,
    .run_service = run_service,
    .on_event = NULL,   /* no event hooks */
    .run_command = run_command,
};

static const ody_factory factory = {
    sizeof(ody_factory), ODY_KIND_ADDON, "open-in-vm", ODY_ADDON_CAP_DOMAIN_SIDE, &ops,
};

static const struct addon_definition definition = {
    "open-in-vm", "1.0.0", "Apache-2.0",
    "Open a file or URL in another domain or a fresh disposable (qubes.OpenInVM, qubes.OpenURL)", &factory,
};

ODY_ADDON_EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    return addon_entry(&definition, req, info, err);
}
