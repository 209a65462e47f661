/*
 * odyssey_plugin.h - the whole Odyssey plugin ABI, version 1.
 *
 * A plugin is a shared object exporting exactly one symbol, ODY_ENTRY_SYMBOL.
 * Everything else is reached through the tables below. Rules that keep this
 * header stable for years:
 *
 *  - Every struct starts with `uint32_t struct_size`. The writer sets it to
 *    sizeof(the struct it was compiled with); a reader touches a member only
 *    if the member lies inside struct_size (ODY_HAS_MEMBER). Structs and
 *    tables only ever grow at the end.
 *  - Every interface table carries a `version` (the ABI minor it was written
 *    for) and every slot says the release that added it (since 1.0).
 *  - A NULL slot means "unsupported". Plugins write no stubs; the host turns
 *    a NULL slot into one ODY_E_UNSUPPORTED error in one place.
 *  - Every operation takes `uint32_t flags`; a plugin rejects bits it does
 *    not know with ODY_E_FLAGS (ody_check_flags below), so new behaviour is
 *    a new flag, never a Foo/FooFlags/_v2 slot.
 *  - Every operation returns int32_t: ODY_OK (0), a negative ODY_E_* code
 *    with the caller-owned ody_error filled in, or, for operations called
 *    with ODY_F_ASYNC, a positive sequence number completed later by an
 *    ODY_EVENT_COMPLETION event carrying the same sequence number.
 *  - Output goes into caller-owned buffers; when a buffer is too small the
 *    call fails with ODY_E_TOO_SMALL and reports the needed size. Nothing
 *    allocated by one side is freed by the other. Strings handed out by a
 *    plugin in its info/factory structs are static (plugins are never
 *    unloaded).
 *  - Serialisable by design: flat structs, strings, byte blobs and file
 *    descriptors only; no callbacks into plugin-owned mutable memory. The
 *    same .so can therefore be served out of process by a small runner.
 *  - No #if changes the layout: capabilities are data (bits), never macros.
 *
 * Changelog
 *   1.0  first version: entry handshake, host services, vmm, vchan, addon,
 *        gui (declared only).
 *   1.1  add-ons in practice: ody_addon_ops.run_command (client commands in
 *        domains), ody_host_services.call_service/call_finish (a qrexec call
 *        from an add-on), ody_command_call.
 *   1.2  the provider-neutral domain description: ody_domain_config grows
 *        volumes by role, shares, the agent's channel, kernel, initrd and
 *        kernel options, label, the agent and its environment, a run
 *        directory; ody_volume, ody_share, ody_channel_desc;
 *        ODY_VMM_CAP_BLOCK_VOLUMES and the ODY_VMM_CAP_CHANNEL_* bits;
 *        ody_vchan_ops.describe_domain.
 *   1.3  the trusted GUI: ody_gui_ops.attach/detach with ody_gui_domain (a
 *        domain's GUI channel, name, label and colour); host services
 *        gui_focus, clipboard_copy and clipboard_paste.
 */
#ifndef ODYSSEY_PLUGIN_H
#define ODYSSEY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ODY_ABI_MAJOR 1u
#define ODY_ABI_MINOR 3u
/* The single symbol a plugin exports (type: ody_entry_fn). */
#define ODY_ENTRY_SYMBOL "odyssey_plugin_entry"

/* True if `member` of the struct at `ptr` lies inside ptr->struct_size. */
#define ODY_HAS_MEMBER(ptr, type, member) \
    ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))

/* ---------------------------------------------------------------- status */

enum ody_status_code {
    ODY_OK = 0,
    ODY_E_UNSUPPORTED = -1,  /* NULL slot, or a capability the backend lacks */
    ODY_E_INVALID = -2,      /* bad argument (name, struct_size, value) */
    ODY_E_FLAGS = -3,        /* unknown flag bits */
    ODY_E_TOO_SMALL = -4,    /* output buffer too small; *needed is set */
    ODY_E_NOT_FOUND = -5,    /* no such domain / channel / key */
    ODY_E_EXISTS = -6,       /* already defined / already in use */
    ODY_E_STATE = -7,        /* operation not legal in the current state */
    ODY_E_BACKEND = -8,      /* backend failure; see ody_error.backend_code */
    ODY_E_NO_MEMORY = -9,
    ODY_E_AGAIN = -10,       /* would block; retry */
    ODY_E_PERMISSION = -11,
    ODY_E_IO = -12,
    ODY_E_TIMEOUT = -13,
    ODY_E_ABI = -14,         /* version or struct_size mismatch */
    ODY_E_CLOSED = -15       /* peer closed the channel */
};

/* Caller-owned error, filled by the callee on failure. */
#define ODY_ERROR_MESSAGE_MAX 256
typedef struct ody_error {
    uint32_t struct_size;
    int32_t code;           /* an ody_status_code */
    int32_t backend_code;   /* errno, libxl rc, virErrorNumber...; 0 if none */
    uint32_t flags;         /* reserved, 0 */
    char message[ODY_ERROR_MESSAGE_MAX]; /* NUL-terminated, may be truncated */
} ody_error;

/* Flags valid on every operation. Kind-specific flags start at bit 8. */
#define ODY_F_ASYNC (1u << 0) /* may return a positive sequence number */
#define ODY_F_COMMON_MASK (ODY_F_ASYNC)

/* ------------------------------------------------------------ names/limits */

#define ODY_NAME_MAX 64   /* domain names are at most 31 chars; 64 with room */
#define ODY_UUID_MAX 40   /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */

/* ----------------------------------------------------------------- events */

enum ody_event_kind {
    ODY_EVENT_LIFECYCLE = 1,  /* a domain changed power state */
    ODY_EVENT_COMPLETION = 2, /* an ODY_F_ASYNC operation finished */
    ODY_EVENT_CUSTOM = 3      /* plugin-defined; `name` says which */
};

/* Qubes power states (domains-and-admin-api.md). */
enum ody_power_state {
    ODY_STATE_NA = 0,
    ODY_STATE_HALTED = 1,
    ODY_STATE_TRANSIENT = 2, /* starting */
    ODY_STATE_RUNNING = 3,
    ODY_STATE_HALTING = 4,
    ODY_STATE_DYING = 5,
    ODY_STATE_CRASHED = 6,
    ODY_STATE_PAUSED = 7,
    ODY_STATE_SUSPENDED = 8
};

typedef struct ody_event {
    uint32_t struct_size;
    uint32_t kind;        /* ody_event_kind */
    uint64_t seq;         /* COMPLETION: the sequence number returned */
    int32_t status;       /* COMPLETION: final status */
    uint32_t state;       /* LIFECYCLE: new ody_power_state */
    int32_t detail_code;  /* backend-specific reason (e.g. virDomainEventType) */
    uint32_t flags;       /* reserved, 0 */
    char domain[ODY_NAME_MAX];
    char name[ODY_NAME_MAX];   /* CUSTOM: event name */
    char message[ODY_ERROR_MESSAGE_MAX];
} ody_event;

/* ---------------------------------------------------------- host services */

enum ody_log_level {
    ODY_LOG_TRACE = 0, ODY_LOG_DEBUG = 1, ODY_LOG_INFO = 2,
    ODY_LOG_WARNING = 3, ODY_LOG_ERROR = 4
};

/*
 * Services the host hands to a plugin. `ctx` is whatever the host put in
 * ody_entry_request.host_ctx or ody_instance_args.host_ctx: it tells the host
 * which plugin or instance is speaking. All three may be called from any
 * thread, at any time after they were handed in.
 */
typedef struct ody_host_services {
    uint32_t struct_size;
    uint32_t version; /* ABI minor */
    /* since 1.0 */
    void (*log)(void *ctx, uint32_t level, const char *message);
    /* since 1.0: lifecycle, completion and custom events */
    void (*emit_event)(void *ctx, const ody_event *event);
    /* since 1.0: a config value of this instance's section ([vmm.libvirt]
     * for factory "libvirt" of kind vmm), rendered as text. ODY_E_NOT_FOUND
     * if unset; ODY_E_TOO_SMALL with *needed (including the NUL). */
    int32_t (*config_get)(void *ctx, const char *key, char *buf, size_t buf_size,
                          size_t *needed, uint32_t flags);
    /* since 1.1: starts a qrexec call of `service` ("qubes.Filecopy" or
     * "SERVICE+ARG") in `target` (a domain name or a keyword: "@default"
     * lets the policy choose, "@dispvm"), under the host's policy. *fd is a
     * socket: what is written reaches the service's stdin (shutdown(fd,
     * SHUT_WR) is its EOF), what the service writes to stdout is read from
     * it; the service's stderr goes to the caller's. The caller closes *fd
     * and then calls call_finish exactly once with *call_id. NULL where no
     * qrexec client exists (inside odysseyd). */
    int32_t (*call_service)(void *ctx, const char *target, const char *service,
                            int32_t *fd, uint64_t *call_id, uint32_t flags, ody_error *err);
    /* since 1.1: waits for the call to end; *exit_status is the service's
     * (126 refused by policy, 127 no such service, as ody-call). */
    int32_t (*call_finish)(void *ctx, uint64_t call_id, int32_t *exit_status,
                           uint32_t flags, ody_error *err);
    /* since 1.3 (gui plugins): the user focused a window of `domain` ("" when
     * the focus left every domain window). Informational: input routing
     * stays the plugin's job. */
    void (*gui_focus)(void *ctx, const char *domain, uint32_t flags);
    /* since 1.3 (gui plugins): the user pressed the copy chord in a window of
     * `domain`, which then sent `data`; the host keeps it as the one global
     * clipboard, remembering its source, and logs the copy. ODY_E_INVALID if
     * over the host's clipboard limit. */
    int32_t (*clipboard_copy)(void *ctx, const char *domain, const void *data, size_t size,
                              uint32_t flags, ody_error *err);
    /* since 1.3 (gui plugins): the user pressed the paste chord in a window of
     * `target`. The host asks the central policy (qubes.ClipboardPaste, from
     * the clipboard's source to `target`; the chord is the user's answer to
     * `ask`), logs the decision and, on allow, copies the data into buf
     * (ODY_E_TOO_SMALL with *needed), writes its source into `source`
     * (ODY_NAME_MAX bytes) and empties the clipboard. ODY_E_PERMISSION when
     * the policy denies, ODY_E_NOT_FOUND when the clipboard is empty. */
    int32_t (*clipboard_paste)(void *ctx, const char *target, void *buf, size_t buf_size,
                               size_t *needed, char *source, uint32_t flags, ody_error *err);
} ody_host_services;

/* ------------------------------------------------------ entry and factories */

enum ody_interface_kind {
    ODY_KIND_VMM = 1,
    ODY_KIND_VCHAN = 2,
    ODY_KIND_ADDON = 3,
    ODY_KIND_GUI = 4
};

/* One implementation of one interface kind, selected by name from config. */
typedef struct ody_factory {
    uint32_t struct_size;
    uint32_t kind;          /* ody_interface_kind */
    const char *name;       /* "native", "libvirt", "socket"...: [a-z0-9_-] */
    uint64_t capabilities;  /* kind-specific ODY_*_CAP_* bits */
    const void *ops;        /* ody_vmm_ops / ody_vchan_ops / ody_addon_ops / ody_gui_ops */
} ody_factory;

/* What the host offers at entry. */
typedef struct ody_entry_request {
    uint32_t struct_size;
    uint32_t abi_major;     /* ODY_ABI_MAJOR of the host */
    uint32_t abi_minor;     /* the host's highest minor */
    uint32_t flags;         /* reserved, 0 */
    const ody_host_services *host;
    void *host_ctx;         /* pass back as `ctx` to host services */
} ody_entry_request;

/* What the plugin answers; the host allocates it and sets struct_size. */
typedef struct ody_plugin_info {
    uint32_t struct_size;
    uint32_t abi_major;     /* the plugin's major: must equal the host's */
    uint32_t abi_minor;     /* min(host's minor, plugin's minor) */
    uint32_t flags;         /* reserved, 0 */
    const char *id;         /* "vmm-libvirt": matches the manifest */
    const char *version;    /* "1.0.0" */
    const char *license;    /* SPDX identifier */
    const char *description;
    uint32_t factory_count;
    uint32_t reserved;
    const ody_factory *const *factories;
} ody_plugin_info;

/* The one exported symbol. Returns ODY_OK or a negative code with *err set. */
typedef int32_t (*ody_entry_fn)(const ody_entry_request *request,
                                ody_plugin_info *info, ody_error *err);

/* Arguments to every factory's `open`. */
typedef struct ody_instance_args {
    uint32_t struct_size;
    uint32_t flags;         /* reserved, 0 */
    const ody_host_services *host;
    void *host_ctx;         /* identifies the instance to host services */
    const char *instance_name; /* e.g. "libvirt"; for log lines */
} ody_instance_args;

/* ----------------------------------------------------------------- vmm */

/* vmm capability bits (ody_factory.capabilities) */
#define ODY_VMM_CAP_PAUSE           (1ull << 0)
#define ODY_VMM_CAP_LIFECYCLE_EVENTS (1ull << 1)
#define ODY_VMM_CAP_PERSISTENT      (1ull << 2) /* definitions survive the instance */
#define ODY_VMM_CAP_VOLUMES         (1ull << 3)
#define ODY_VMM_CAP_ASYNC_START     (1ull << 4)
#define ODY_VMM_CAP_MEMORY_LIMIT    (1ull << 5)
#define ODY_VMM_CAP_NAMESPACES      (1ull << 6) /* process-level isolation */
#define ODY_VMM_CAP_HARDWARE_VIRT   (1ull << 7) /* a separate kernel */
/* since 1.2: the host hands volumes as disk images (ODY_VOLUME_IMAGE), not
 * as host directory trees (ODY_VOLUME_TREE): said once, here, so the host
 * prepares the form the provider consumes. */
#define ODY_VMM_CAP_BLOCK_VOLUMES   (1ull << 8)
/* since 1.2: which agent channel kinds the provider can wire into a domain
 * (ody_channel_desc.kind); a domain whose channel the provider cannot wire
 * is refused at start with one message. */
#define ODY_VMM_CAP_CHANNEL_SOCKET_DIR    (1ull << 9)
#define ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL (1ull << 10)
#define ODY_VMM_CAP_CHANNEL_VSOCK         (1ull << 11)
#define ODY_VMM_CAP_CHANNEL_XEN           (1ull << 12)

/* vmm flags */
#define ODY_VMM_SHUTDOWN_WAIT (1u << 8) /* shutdown: return only once halted */

typedef struct ody_vmm ody_vmm; /* opaque instance */

/* ------------------------------------------- domain description (1.2) */

/* A volume's role: what it is to the domain, not how it is stored (Qubes'
 * model: root = the template's root, private = /rw, volatile = scratch). */
enum ody_volume_role {
    ODY_VOLUME_ROOT = 1,     /* mounted at / */
    ODY_VOLUME_PRIVATE = 2,  /* persistent, mounted at /rw; /home is /rw/home */
    ODY_VOLUME_VOLATILE = 3, /* scratch, discarded at stop */
    ODY_VOLUME_MODULES = 4   /* kernel modules for a guest kernel */
};

/* How the host hands a volume (see ODY_VMM_CAP_BLOCK_VOLUMES). */
enum ody_volume_form {
    ODY_VOLUME_TREE = 1,   /* `path` is a host directory tree */
    ODY_VOLUME_IMAGE = 2,  /* `path` is a raw disk image (ext4, no partition table) */
    ODY_VOLUME_NONE = 3    /* nothing from the host: the provider makes it (volatile) */
};

/* Volume flags. */
#define ODY_VOLUME_F_SNAPSHOT  (1u << 0) /* writes go to a copy-on-write layer the
                                          * provider makes per start (in run_dir)
                                          * and discards at stop; `path` is never
                                          * written */
#define ODY_VOLUME_F_READ_ONLY (1u << 1) /* the domain sees it read-only */

typedef struct ody_volume {
    uint32_t struct_size;
    uint32_t role;         /* ody_volume_role */
    uint32_t form;         /* ody_volume_form */
    uint32_t flags;        /* ODY_VOLUME_F_* */
    const char *path;      /* host path (tree or image); "" for ODY_VOLUME_NONE */
    uint64_t size_mib;     /* the size to make (NONE), else the image's size; 0 = provider default */
} ody_volume;

/* A host directory the domain sees at `guest_path` (the agent's binaries,
 * the services Odyssey ships, the add-ons view). Native binds it; a VM
 * provider exports it (9p, virtiofs). */
#define ODY_SHARE_F_READ_ONLY (1u << 0)
typedef struct ody_share {
    uint32_t struct_size;
    uint32_t flags;        /* ODY_SHARE_F_* */
    const char *host_path;
    const char *guest_path;
    const char *tag;       /* a short unique name ([a-z0-9_]), for mount tags */
} ody_share;

/* The agent's channel into the domain, as the domain's vchan backend
 * describes it (ody_vchan_ops.describe_domain); the provider wires it. */
enum ody_channel_kind {
    ODY_CHANNEL_SOCKET_DIR = 1,    /* `path`: a host directory of Unix sockets,
                                    * seen inside at /run/odyssey/vchan */
    ODY_CHANNEL_VIRTIO_SERIAL = 2, /* `path`: the host Unix socket of a
                                    * virtio-serial port named `name` */
    ODY_CHANNEL_VSOCK = 3,         /* `cid`: the guest's vsock context id */
    ODY_CHANNEL_XEN = 4            /* vchan over Xen grant tables: nothing to wire */
};
#define ODY_CHANNEL_PATH_MAX 256
typedef struct ody_channel_desc {
    uint32_t struct_size;
    uint32_t kind;         /* ody_channel_kind */
    uint32_t flags;        /* reserved, 0 */
    uint32_t cid;          /* VSOCK */
    char path[ODY_CHANNEL_PATH_MAX];
    char name[ODY_NAME_MAX];
} ody_channel_desc;

/*
 * A domain definition. Since 1.2 the host says *what* the domain is:
 * volumes by role, shares, the agent's channel, kernel, label, limits; each
 * provider decides *how* (native: overlay and bind mounts; libvirt: disks,
 * channels and a kernel command line; Xen: its disks and vchans). `params`
 * (NUL-terminated "key=value" strings) remains for keys an admin sets for
 * one provider; keys a backend does not know are ignored. A 1.1 reader sees
 * only the members up to `params`. A description has at least a root
 * volume: volume_count 0 means "no description" (params only, as in 1.1).
 */
typedef struct ody_domain_config {
    uint32_t struct_size;
    uint32_t flags;        /* reserved, 0 */
    char name[ODY_NAME_MAX];
    char uuid[ODY_UUID_MAX];
    uint64_t memory_mib;
    uint64_t maxmem_mib;
    uint32_t vcpus;
    uint32_t params_len;   /* bytes in params, including the final NUL */
    const char *params;
    /* since 1.2 */
    uint32_t volume_count;
    uint32_t share_count;
    const ody_volume *volumes;
    const ody_share *shares;
    const ody_channel_desc *channel; /* the agent's channel; NULL: none */
    const char *kernel;     /* guest kernel image; "" none (native: the host's) */
    const char *initrd;     /* "" none */
    const char *kernelopts; /* extra guest kernel options; "" none */
    const char *label;      /* Qubes label ("red"), for decorations and metadata */
    const char *agent_path; /* the agent, inside the domain (its first process) */
    /* "KEY=VALUE" strings for the agent's environment, NULL-terminated */
    const char *const *agent_env;
    const char *run_dir;    /* host directory for this start's files (snapshots,
                             * sockets); the host empties it after stop */
} ody_domain_config;

typedef struct ody_domain_info {
    uint32_t struct_size;
    uint32_t state;        /* ody_power_state */
    char name[ODY_NAME_MAX];
    char uuid[ODY_UUID_MAX];
    uint64_t memory_kib;
    uint64_t maxmem_kib;
    uint64_t cputime_ns;
    uint32_t vcpus;
    int32_t pid;           /* init process on the host, or -1 */
} ody_domain_info;

typedef struct ody_vmm_ops {
    uint32_t struct_size;
    uint32_t version;  /* ABI minor this table was written for */
    /* since 1.0 */
    int32_t (*open)(const ody_instance_args *args, ody_vmm **out, ody_error *err);
    void (*close)(ody_vmm *vmm, uint32_t flags);
    int32_t (*define)(ody_vmm *vmm, const ody_domain_config *config, uint32_t flags, ody_error *err);
    int32_t (*undefine)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*start)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*shutdown)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*kill)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*pause)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*unpause)(ody_vmm *vmm, const char *name, uint32_t flags, ody_error *err);
    int32_t (*get_info)(ody_vmm *vmm, const char *name, ody_domain_info *out,
                        uint32_t flags, ody_error *err);
    /* Names of defined domains, each NUL-terminated, back to back. */
    int32_t (*list)(ody_vmm *vmm, char *buf, size_t buf_size, size_t *needed,
                    uint32_t flags, ody_error *err);
} ody_vmm_ops;

/* ----------------------------------------------------------------- vchan */

/* vchan capability bits */
#define ODY_VCHAN_CAP_FD_PASSING   (1ull << 0) /* can carry file descriptors */
#define ODY_VCHAN_CAP_CROSS_KERNEL (1ull << 1) /* peers may run other kernels */
/* server_init needs the peer domain to exist (the peer is an id its vmm
 * assigns when it creates the domain, and the channel is granted to that id
 * alone, as Xen's): the host serves a domain's control channel right after
 * the vmm started it, not before (the agent retries until it is served). */
#define ODY_VCHAN_CAP_PEER_MUST_EXIST (1ull << 2)

/* is_open states, as libvchan */
enum ody_vchan_state {
    ODY_VCHAN_DISCONNECTED = 0,
    ODY_VCHAN_CONNECTED = 1,
    ODY_VCHAN_WAITING = 2
};

typedef struct ody_vchan_backend ody_vchan_backend; /* opaque instance */
typedef struct ody_vchan ody_vchan;                 /* one channel */

/* Who is at each end: a channel is identified by (peer, port). */
typedef struct ody_vchan_endpoint {
    uint32_t struct_size;
    uint32_t port;          /* 512 = control, 513+ = data (qrexec) */
    int32_t local_domid;    /* backend ids where they exist; -1 if none */
    int32_t remote_domid;
    char local_domain[ODY_NAME_MAX];
    char remote_domain[ODY_NAME_MAX];
} ody_vchan_endpoint;

typedef struct ody_vchan_ops {
    uint32_t struct_size;
    uint32_t version;
    /* since 1.0 */
    int32_t (*open)(const ody_instance_args *args, ody_vchan_backend **out, ody_error *err);
    void (*close_backend)(ody_vchan_backend *backend, uint32_t flags);
    int32_t (*server_init)(ody_vchan_backend *backend, const ody_vchan_endpoint *endpoint,
                           size_t read_min, size_t write_min, uint32_t flags,
                           ody_vchan **out, ody_error *err);
    int32_t (*client_init)(ody_vchan_backend *backend, const ody_vchan_endpoint *endpoint,
                           uint32_t flags, ody_vchan **out, ody_error *err);
    /* partial: *done = bytes moved (0 on a non-blocking empty channel) */
    int32_t (*read)(ody_vchan *ch, void *buf, size_t size, size_t *done, uint32_t flags, ody_error *err);
    int32_t (*write)(ody_vchan *ch, const void *buf, size_t size, size_t *done, uint32_t flags, ody_error *err);
    /* all or nothing: exactly `size` bytes, blocking */
    int32_t (*recv)(ody_vchan *ch, void *buf, size_t size, uint32_t flags, ody_error *err);
    int32_t (*send)(ody_vchan *ch, const void *buf, size_t size, uint32_t flags, ody_error *err);
    int32_t (*wait)(ody_vchan *ch, uint32_t flags, ody_error *err);
    int32_t (*fd_for_poll)(ody_vchan *ch, int32_t *fd, uint32_t flags, ody_error *err);
    int32_t (*is_open)(ody_vchan *ch, uint32_t *state, uint32_t flags, ody_error *err);
    int32_t (*data_ready)(ody_vchan *ch, size_t *bytes, uint32_t flags, ody_error *err);
    int32_t (*buffer_space)(ody_vchan *ch, size_t *bytes, uint32_t flags, ody_error *err);
    void (*close)(ody_vchan *ch, uint32_t flags);
    /* since 1.2: how the agent of `domain` reaches this backend (the host
     * hands it to the domain's vmm provider, which wires it). The host end
     * it names is reachable by that one domain alone. */
    int32_t (*describe_domain)(ody_vchan_backend *backend, const char *domain,
                               ody_channel_desc *out, uint32_t flags, ody_error *err);
} ody_vchan_ops;

/* ----------------------------------------------------------------- addon */

#define ODY_ADDON_CAP_ADMIN_SIDE  (1ull << 0) /* services run in the admin domain */
#define ODY_ADDON_CAP_DOMAIN_SIDE (1ull << 1) /* services run inside domains */
#define ODY_ADDON_CAP_EVENT_HOOKS (1ull << 2)

typedef struct ody_addon ody_addon; /* opaque instance */

/* A service the add-on provides ("qubes.Filecopy"). */
typedef struct ody_addon_service {
    uint32_t struct_size;
    uint32_t flags;         /* ODY_ADDON_CAP_ADMIN_SIDE / _DOMAIN_SIDE */
    const char *name;
} ody_addon_service;

/* Static description: what the add-on brings, readable without opening it. */
typedef struct ody_addon_desc {
    uint32_t struct_size;
    uint32_t service_count;
    const ody_addon_service *const *services;
    const char *policy_file_name; /* "70-filecopy.policy", or NULL */
    const char *policy_text;      /* default policy lines, or NULL */
    const char *const *event_hooks; /* NULL-terminated event names, or NULL */
} ody_addon_desc;

/* One call of a service: who asked, and the stdio file descriptors. */
typedef struct ody_service_call {
    uint32_t struct_size;
    uint32_t flags;          /* reserved, 0 */
    char service[256];       /* "qubes.Filecopy" */
    char argument[256];      /* "+arg" or "+" */
    char source[ODY_NAME_MAX]; /* set by the host from the channel, never by the caller */
    char target[ODY_NAME_MAX];
    int32_t stdin_fd;
    int32_t stdout_fd;
    int32_t stderr_fd;
    int32_t reserved;
} ody_service_call;

/* One run of a client command (since 1.1): argv as the user typed it,
 * argv[0] the command's name, and the stdio file descriptors. */
typedef struct ody_command_call {
    uint32_t struct_size;
    uint32_t flags;          /* reserved, 0 */
    int32_t argc;
    int32_t stdin_fd;
    const char *const *argv; /* argc strings, then NULL */
    int32_t stdout_fd;
    int32_t stderr_fd;
} ody_command_call;

typedef struct ody_addon_ops {
    uint32_t struct_size;
    uint32_t version;
    /* since 1.0 */
    int32_t (*open)(const ody_instance_args *args, ody_addon **out, ody_error *err);
    void (*close)(ody_addon *addon, uint32_t flags);
    const ody_addon_desc *(*describe)(uint32_t flags);
    /* Runs one service call to completion; *exit_status as a process's. */
    int32_t (*run_service)(ody_addon *addon, const ody_service_call *call,
                           int32_t *exit_status, uint32_t flags, ody_error *err);
    void (*on_event)(ody_addon *addon, const ody_event *event, uint32_t flags);
    /* since 1.1: runs one client command the add-on installs in domains
     * ("ody-copy"), to completion; *exit_status as a process's. */
    int32_t (*run_command)(ody_addon *addon, const ody_command_call *call,
                           int32_t *exit_status, uint32_t flags, ody_error *err);
} ody_addon_ops;

/* ------------------------------------------------------------------- gui */

/*
 * A gui plugin shows the windows of domains on the host's display and draws
 * what no domain can: the frame in the domain's label colour and the
 * "[name] " that starts every title. It is opened with its config section
 * ([gui.x11] display...), then handed each domain's GUI channel; it reports
 * focus and the clipboard chords back through the host services (1.3).
 */
typedef struct ody_gui ody_gui; /* opaque instance */

/* A domain whose windows the plugin shows (since 1.3). */
typedef struct ody_gui_domain {
    uint32_t struct_size;
    uint32_t flags;            /* reserved, 0 */
    char name[ODY_NAME_MAX];   /* "work": every title starts "[work] " */
    char label[ODY_NAME_MAX];  /* the Qubes label's name ("blue") */
    uint32_t color;            /* the label's colour, 0xRRGGBB: the frame */
    int32_t channel_fd;        /* the domain's GUI channel, a stream socket
                                * carrying Sources/GuiProtocol's messages; the
                                * plugin owns it once attach returns ODY_OK */
} ody_gui_domain;

typedef struct ody_gui_ops {
    uint32_t struct_size;
    uint32_t version;
    /* since 1.0 */
    int32_t (*open)(const ody_instance_args *args, ody_gui **out, ody_error *err);
    void (*close)(ody_gui *gui, uint32_t flags);
    /* since 1.3: starts showing `domain`'s windows. ODY_E_EXISTS if a domain
     * of that name is attached. On failure the fd stays the caller's. */
    int32_t (*attach)(ody_gui *gui, const ody_gui_domain *domain, uint32_t flags, ody_error *err);
    /* since 1.3: closes the domain's channel and every window it had. */
    int32_t (*detach)(ody_gui *gui, const char *name, uint32_t flags, ody_error *err);
} ody_gui_ops;

/* -------------------------------------------------------------- helpers */
/* static inline so a plugin needs this header alone, no library to link. */

/* A short English name for a status code ("unsupported", "too small"...). */
static inline const char *ody_status_name(int32_t code) {
    switch (code) {
    case ODY_OK: return "ok";
    case ODY_E_UNSUPPORTED: return "unsupported";
    case ODY_E_INVALID: return "invalid argument";
    case ODY_E_FLAGS: return "unknown flags";
    case ODY_E_TOO_SMALL: return "buffer too small";
    case ODY_E_NOT_FOUND: return "not found";
    case ODY_E_EXISTS: return "already exists";
    case ODY_E_STATE: return "wrong state";
    case ODY_E_BACKEND: return "backend error";
    case ODY_E_NO_MEMORY: return "out of memory";
    case ODY_E_AGAIN: return "try again";
    case ODY_E_PERMISSION: return "permission denied";
    case ODY_E_IO: return "I/O error";
    case ODY_E_TIMEOUT: return "timed out";
    case ODY_E_ABI: return "ABI mismatch";
    case ODY_E_CLOSED: return "closed";
    default: return code > 0 ? "pending" : "unknown error";
    }
}

/* Fill an ody_error (only the members inside its struct_size) and return
 * `code`, so a plugin can write `return ody_error_set(err, ...)`. */
static inline int32_t ody_error_set(ody_error *err, int32_t code, int32_t backend_code,
                                    const char *message) {
    if (err == NULL) return code;
    if (ODY_HAS_MEMBER(err, ody_error, code)) err->code = code;
    if (ODY_HAS_MEMBER(err, ody_error, backend_code)) err->backend_code = backend_code;
    if (ODY_HAS_MEMBER(err, ody_error, message)) {
        size_t i = 0;
        if (message != NULL)
            for (; message[i] != '\0' && i + 1 < sizeof err->message; i++) err->message[i] = message[i];
        err->message[i] = '\0';
    }
    return code;
}

/* The minor a plugin built against this header answers at entry:
 * min(host's highest minor, this header's ODY_ABI_MINOR). */
static inline uint32_t ody_negotiate_minor(uint32_t host_minor) {
    return host_minor > ODY_ABI_MINOR ? ODY_ABI_MINOR : host_minor;
}

/* Rejects flag bits outside `known` with ODY_E_FLAGS. */
static inline int32_t ody_check_flags(uint32_t flags, uint32_t known, ody_error *err) {
    if ((flags & ~known) == 0) return ODY_OK;
    return ody_error_set(err, ODY_E_FLAGS, 0, "unknown flag bits");
}

#ifdef __cplusplus
}
#endif
#endif /* ODYSSEY_PLUGIN_H */
