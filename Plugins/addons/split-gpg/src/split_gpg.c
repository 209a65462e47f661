/*
 * split_gpg.c - the split-gpg add-on: what it declares and where each call
 * goes. Keys stay in a vault domain without network; other domains sign,
 * verify, encrypt and decrypt through ody-gpg.
 *
 *   qubes.Gpg           domain side, in the vault    split_gpg_server.c
 *   odyssey.GpgConsent  admin side, in odysseyd      split_gpg_consent.c
 *   ody-gpg             client command               split_gpg_client.c
 *
 * The option allow-list both ends apply is in split_gpg_options.c, the
 * stream between them in split_gpg_wire.h.
 */
#include <string.h>

#include "addon_common.h"
#include "split_gpg.h"
#include "split_gpg_consent.h"

/* Must stay identical to ../70-split-gpg.policy (the manifest names it). */
static const char policy_text[] =
    "# split-gpg add-on: a domain reaching a vault's keys is asked for (Qubes'\n"
    "# default), and the vault asks once more, per source domain, for consent\n"
    "# (odyssey.GpgConsent+SOURCE to the admin domain), remembered for\n"
    "# autoaccept_seconds. Typical override: \"qubes.Gpg * work vault allow\".\n"
    "qubes.Gpg          * @anyvm @anyvm   ask\n"
    "odyssey.GpgConsent * @anyvm @adminvm ask\n";

static const ody_addon_service gpg_service = {sizeof(ody_addon_service), ODY_ADDON_CAP_DOMAIN_SIDE, "qubes.Gpg"};
static const ody_addon_service consent_svc = {sizeof(ody_addon_service), ODY_ADDON_CAP_ADMIN_SIDE, "odyssey.GpgConsent"};
static const ody_addon_service *const services[] = {&gpg_service, &consent_svc};

static const ody_addon_desc desc = {
    .struct_size = sizeof(ody_addon_desc),
    .service_count = 2,
    .services = services,
    .policy_file_name = "70-split-gpg.policy",
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
    if (strcmp(call->service, "qubes.Gpg") == 0) {
        *exit_status = split_gpg_serve(a, call);
        return ODY_OK;
    }
    if (strcmp(call->service, "odyssey.GpgConsent") == 0) {
        *exit_status = consent_service(a, call);
        return ODY_OK;
    }
    return ody_error_set(err, ODY_E_NOT_FOUND, 0, "split-gpg provides no such service");
}

static int32_t run_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status, uint32_t flags,
                           ody_error *err) {
    int32_t rc = addon_check_command_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    if (strcmp(call->argv[0], "ody-gpg") != 0)
        return ody_error_set(err, ODY_E_NOT_FOUND, 0, "split-gpg provides no such command");
    *exit_status = split_gpg_client(a, call);
    return ODY_OK;
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

static const ody_factory factory = {
    sizeof(ody_factory), ODY_KIND_ADDON, "split-gpg", ODY_ADDON_CAP_DOMAIN_SIDE | ODY_ADDON_CAP_ADMIN_SIDE, &ops,
};

static const struct addon_definition def = {
    "split-gpg", "1.0.0", "Apache-2.0",
    "Split GPG: keys stay in a vault domain; other domains use them through ody-gpg, a filtered gpg front end",
    &factory,
};

ODY_ADDON_EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    return addon_entry(&def, req, info, err);
}
