/*
 * fixture_plugin.c - one source, many misbehaving plugins: the loader tests
 * compile it with one -D below each, to check that every way a plugin can be
 * wrong is refused with a clear reason while the others keep loading.
 *
 *   (none)          a valid vmm factory "fixture" (used for duplicates)
 *   NO_ENTRY        exports no entry symbol
 *   ENTRY_FAILS     entry returns ODY_E_BACKEND with a message
 *   BAD_MAJOR       answers ABI major 2
 *   MINOR_ABOVE     answers a minor above the host's
 *   SMALL_INFO      writes info->struct_size smaller than the host reads
 *   SMALL_OPS       ops table struct_size smaller than ABI 1.0's
 *   ID=x            answers plugin id x (manifest mismatch)
 *   FACTORY=x       names its factory x
 */
#include <odyssey_plugin.h>
#include <string.h>

#ifndef ID
#define ID "fixture"
#endif
#ifndef FACTORY
#define FACTORY "fixture"
#endif

struct ody_vmm { int unused; };
static struct ody_vmm the_instance;

static int32_t fx_open(const ody_instance_args *a, ody_vmm **out, ody_error *err) {
    (void)a; (void)err; *out = &the_instance; return ODY_OK;
}
static void fx_close(ody_vmm *v, uint32_t flags) { (void)v; (void)flags; }

static const ody_vmm_ops ops = {
#ifdef SMALL_OPS
    .struct_size = 4,
#else
    .struct_size = sizeof(ody_vmm_ops),
#endif
    .version = 0,
    .open = fx_open,
    .close = fx_close,
    /* every other slot NULL: "unsupported", reported by the host */
};

static const ody_factory factory = { sizeof(ody_factory), ODY_KIND_VMM, FACTORY, 0, &ops };
static const ody_factory *const factories[] = { &factory };

#ifdef NO_ENTRY
__attribute__((visibility("default"))) int not_the_entry(void) { return 0; }
#else
__attribute__((visibility("default")))
int32_t odyssey_plugin_entry(const ody_entry_request *req, ody_plugin_info *info, ody_error *err) {
#ifdef ENTRY_FAILS
    (void)req; (void)info;
    return ody_error_set(err, ODY_E_BACKEND, 42, "fixture: cannot initialise (on purpose)");
#else
    (void)err;
    info->abi_major = ODY_ABI_MAJOR;
    info->abi_minor = ody_negotiate_minor(req->abi_minor);
#ifdef BAD_MAJOR
    info->abi_major = 2;
#endif
#ifdef MINOR_ABOVE
    info->abi_minor = req->abi_minor + 3;
#endif
    info->id = ID;
    info->version = "0.0.1";
    info->license = "MIT";
    info->description = "loader test fixture";
    info->factory_count = 1;
    info->factories = factories;
#ifdef SMALL_INFO
    info->struct_size = 16;
#endif
    return ODY_OK;
#endif
}
#endif
