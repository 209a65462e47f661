/*
 * pdf_converter.c - the add-on's face: entry point, description (must match
 * pdf-converter.json and 70-pdf-converter.policy) and the two calls.
 *
 * Qubes' qvm-convert-pdf, rebuilt: the untrusted PDF is rendered in a
 * disposable (render_service.c), only pixels come back, and the caller
 * checks them strictly and writes a new PDF of its own (convert_command.c,
 * pixel_stream.c, pdf_writer.c).
 */
#include "pdfc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Byte for byte the content of 70-pdf-converter.policy. */
static const char policy_text[] =
    "# pdf-converter add-on: PDFs are rendered in a fresh disposable (Qubes' default).\n"
    "qubes.PdfConvert * @anyvm @dispvm allow\n";

static const ody_addon_service convert_service = {
    .struct_size = sizeof(ody_addon_service), .flags = ODY_ADDON_CAP_DOMAIN_SIDE, .name = PDFC_SERVICE,
};
static const ody_addon_service *const services[] = {&convert_service};

static const ody_addon_desc desc = {
    .struct_size = sizeof(ody_addon_desc),
    .service_count = 1,
    .services = services,
    .policy_file_name = "70-pdf-converter.policy",
    .policy_text = policy_text,
    .event_hooks = NULL,
};

static const ody_addon_desc *describe(uint32_t flags) {
    (void)flags;
    return &desc;
}

int pdfc_resolution(ody_addon *a, int err_fd, unsigned *dpi) {
    char buf[32];
    const char *v = addon_config(a, "resolution", buf, sizeof buf, "100");
    /* Parsed here rather than with addon_config_u64: a typo must stop the
     * conversion, not silently fall back to another page size. */
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || end == v || *end != 0 || n < PDFC_MIN_DPI || n > PDFC_MAX_DPI) {
        say(err_fd, "pdf-converter: config resolution=\"%.20s\" is not a number of DPI in %u..%u", v, PDFC_MIN_DPI,
            PDFC_MAX_DPI);
        return -1;
    }
    *dpi = (unsigned)n;
    return 0;
}

static int32_t run_service(ody_addon *a, const ody_service_call *call, int32_t *exit_status, uint32_t flags,
                           ody_error *err) {
    int32_t rc = addon_check_service_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    if (strcmp(call->service, PDFC_SERVICE) != 0)
        return ody_error_set(err, ODY_E_NOT_FOUND, 0, "pdf-converter provides no such service");
    *exit_status = pdfc_run_service(a, call);
    return ODY_OK;
}

static int32_t run_command(ody_addon *a, const ody_command_call *call, int32_t *exit_status, uint32_t flags,
                           ody_error *err) {
    int32_t rc = addon_check_command_call(call, exit_status, flags, err);
    if (rc != ODY_OK) return rc;
    if (strcmp(call->argv[0], PDFC_COMMAND) != 0)
        return ody_error_set(err, ODY_E_NOT_FOUND, 0, "pdf-converter provides no such command");
    *exit_status = pdfc_run_command(a, call);
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
    sizeof(ody_factory), ODY_KIND_ADDON, "pdf-converter", ODY_ADDON_CAP_DOMAIN_SIDE, &ops,
};

static const struct addon_definition def = {
    "pdf-converter", "1.0.0", "Apache-2.0",
    "Make a PDF trusted: rendered to pixels in a disposable, rebuilt from the checked pixels by the caller.",
    &factory,
};

ODY_ADDON_EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    return addon_entry(&def, req, info, err);
}
