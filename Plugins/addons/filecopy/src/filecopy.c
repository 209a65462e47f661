/* filecopy.c - skeleton until the add-on lands. */
#include "addon_common.h"

static const ody_addon_desc desc = { .struct_size = sizeof(ody_addon_desc) };
static const ody_addon_desc *describe(uint32_t flags) { (void)flags; return &desc; }
static const ody_addon_ops ops = {
    .struct_size = sizeof(ody_addon_ops), .version = ODY_ABI_MINOR,
    .open = addon_open, .close = addon_close, .describe = describe,
};
static const ody_factory factory = { sizeof(ody_factory), ODY_KIND_ADDON, "filecopy", 0, &ops };
static const struct addon_definition def = { "filecopy", "0.0.0", "Apache-2.0", "skeleton", &factory };
ODY_ADDON_EXPORT int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
    return addon_entry(&def, req, info, err);
}
