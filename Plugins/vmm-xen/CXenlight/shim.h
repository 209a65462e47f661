/* The libxl headers the vmm-xen plugin imports, plus what Swift cannot
 * write itself:
 *  - a xentoollog logger: libxl calls its `vmessage` with a va_list, and a
 *    Swift function taking a va_list cannot be a C function pointer. The
 *    few lines below format the message and hand plain text to a Swift sink.
 *  - INVALID_DOMID, a macro of an expression Swift does not import. */
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
#endif
