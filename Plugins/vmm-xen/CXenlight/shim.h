/* The libxl headers the vmm-xen plugin imports, plus what Swift cannot
 * write itself:
 *  - a xentoollog logger: libxl calls its `vmessage` with a va_list, and a
 *    Swift function taking a va_list cannot be a C function pointer. The
 *    few lines below format the message and hand plain text to a Swift sink.
 *  - INVALID_DOMID, a macro of an expression Swift does not import.
 * and a function-pointer type for every libxl call the plugin makes: it does
 * not link libxl but resolves these with dlsym (XenAPI.swift), so the types
 * come from the declarations themselves and cannot drift from them. Nothing
 * here calls into libxl or libxentoollog (vsnprintf is libc's). */
#ifndef ODYSSEY_CXENLIGHT_SHIM_H
#define ODYSSEY_CXENLIGHT_SHIM_H
#include <stdint.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <xentoollog.h>

#include <stdio.h>

typedef void (*ody_xtl_sink)(void *owner, int level, int errnoval, const char *context, const char *message);

typedef struct ody_xtl_logger {
    xentoollog_logger base; /* must stay first: libxl passes &base back */
    void *owner;            /* the Swift object receiving the messages */
    ody_xtl_sink sink;
} ody_xtl_logger;

static void ody_xtl_vmessage(xentoollog_logger *lg, xentoollog_level level, int errnoval,
                             const char *context, const char *format, va_list al) {
    ody_xtl_logger *l = (ody_xtl_logger *)lg;
    char buf[1024];
    vsnprintf(buf, sizeof buf, format, al);
    if (l->sink) l->sink(l->owner, (int)level, errnoval, context, buf);
}

static void ody_xtl_destroy(xentoollog_logger *lg) { (void)lg; /* the memory is the plugin's */ }

static inline void ody_xtl_logger_init(ody_xtl_logger *l, void *owner, ody_xtl_sink sink) {
    l->base.vmessage = ody_xtl_vmessage;
    l->base.progress = 0;
    l->base.destroy = ody_xtl_destroy;
    l->owner = owner;
    l->sink = sink;
}

static const uint32_t ODY_XEN_INVALID_DOMID = (uint32_t)INVALID_DOMID;

/* The root snapshot's sparse copy (XenRunFiles.sparseCopy): glibc declares
 * SEEK_DATA/SEEK_HOLE and copy_file_range only under _GNU_SOURCE, which
 * Swift's Glibc module is not built with. */
#include <sys/syscall.h>
#include <unistd.h>
static const int ODY_SEEK_DATA = 3, ODY_SEEK_HOLE = 4;
static inline long ody_copy_file_range(int fd_in, long long *off_in, int fd_out, long long *off_out, unsigned long len) {
    return syscall(SYS_copy_file_range, fd_in, off_in, fd_out, off_out, len, 0u);
}

/* The libxl these headers (libxen-dev 4.17) describe. libxl's structs
 * (libxl_domain_config, libxl_dominfo...) change between Xen releases and
 * the soname with them, so no other version is ever tried. */
#define ODY_LIBXENLIGHT_SONAME "libxenlight.so.4.17"

#define ODY_XL_FN(name) typedef __typeof__(name) *ody_##name##_fn;
ODY_XL_FN(libxl_ctx_alloc)
ODY_XL_FN(libxl_ctx_free)
ODY_XL_FN(libxl_childproc_setmode)
ODY_XL_FN(libxl_event_register_callbacks)
ODY_XL_FN(libxl_event_free)
ODY_XL_FN(libxl_osevent_beforepoll)
ODY_XL_FN(libxl_osevent_afterpoll)
ODY_XL_FN(libxl_evenable_domain_death)
ODY_XL_FN(libxl_evdisable_domain_death)
ODY_XL_FN(libxl_name_to_domid)
ODY_XL_FN(libxl_domid_to_name)
ODY_XL_FN(libxl_list_domain)
ODY_XL_FN(libxl_dominfo_list_free)
ODY_XL_FN(libxl_dominfo_init)
ODY_XL_FN(libxl_dominfo_dispose)
ODY_XL_FN(libxl_domain_info)
ODY_XL_FN(libxl_domain_config_init)
ODY_XL_FN(libxl_domain_config_dispose)
ODY_XL_FN(libxl_domain_build_info_init_type)
ODY_XL_FN(libxl_cpu_bitmap_alloc)
ODY_XL_FN(libxl_bitmap_set)
ODY_XL_FN(libxl_uuid_generate)
ODY_XL_FN(libxl_uuid_from_string)
ODY_XL_FN(libxl_domain_create_new)
ODY_XL_FN(libxl_domain_destroy)
ODY_XL_FN(libxl_domain_shutdown)
ODY_XL_FN(libxl_domain_pause)
ODY_XL_FN(libxl_domain_unpause)
ODY_XL_FN(libxl_get_physinfo)
ODY_XL_FN(libxl_physinfo_init)
ODY_XL_FN(libxl_physinfo_dispose)
ODY_XL_FN(libxl_device_disk_init)
#undef ODY_XL_FN
#endif
