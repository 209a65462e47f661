/*
 * filecopy.c - the filecopy add-on (Qubes qvm-copy / qvm-move): the
 * qubes.Filecopy receiver (domain side) and the ody-copy / ody-move
 * client commands. Files are described in filecopy_internal.h.
 */
#include "filecopy_internal.h"

#include <string.h>

/* Same text as 70-filecopy.policy (the manifest's policy file). */
static const char policy_text[] =
    "# filecopy add-on: copying files between domains asks the user for the target\n"
    "# (Qubes' default). Override with a lower-numbered file in a policy directory,\n"
    "# e.g. \"qubes.Filecopy * work personal allow\" in 30-user.policy.\n"
    "qubes.Filecopy * @anyvm @anyvm ask\n";

static const ody_addon_service filecopy_service = {sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, FC_SERVICE};
static const ody_addon_service *const services[] = {&filecopy_service};

static const ody_addon_desc desc = {
    .struct_size = sizeof(ody_addon_desc),
    .service_count = 1,
    .services = services,
    .policy_file_name = "70-filecopy.policy",
    .policy_text = policy_text,
    .event_hooks = NULL,
};

static const ody_addon_desc *describe(uint32_t flags) {
    (void)flags;
    return &desc;
}

static int32_t run_service(ody_addon *a, const ody_service_call *call, int32_t *exit_status, uint32_t flags, ody_error *err) {
    int32_t rc = addon_check_service_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    if (strcmp(call->service, FC_SERVICE) != 0) return ody_error_set(err, ODY_E_UNSUPPORTED, 0, "filecopy provides only qubes.Filecopy");
    return fc_receive_service(a, call, exit_status);
}

static int32_t run_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status, uint32_t flags, ody_error *err) {
    int32_t rc = addon_check_command_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    const char *name = strrchr(call->argv[0], '/') != NULL ? strrchr(call->argv[0], '/') + 1 : call->argv[0];
    if (strcmp(name, "ody-copy") != 0 && strcmp(name, "ody-move") != 0)
        return ody_error_set(err, ODY_E_UNSUPPORTED, 0, "filecopy provides only ody-copy and ody-move");
    return fc_copy_command(a, call, exit_status);
}

static const ody_addon_ops ops = {
    .struct_size = sizeof(ody_addon_ops),
    .version = ODY_ABI_MINOR,
    .open = addon_open,
    .close = addon_close,
    .describe = describe,
    .run_service = run_service,
    .on_event = NULL,
    .run_command = run_command,
};

static const ody_factory factory = {sizeof(ody_factory), ODY_KIND_ADDON, "filecopy", ODY_ADDON_CAP_DOMAIN_SIDE, &ops};
static const struct addon_definition def = {
    "filecopy", "1.0.0", "Apache-2.0",
    "Copy and move files between domains (Qubes qvm-copy/qvm-move): the qubes.Filecopy stream, a confined "
    "receiver landing files in ~/QubesIncoming/SOURCE/, with a size and file-count quota.",
    &factory,
};

ODY_ADDON_EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    return addon_entry(&def, req, info, err);
}
