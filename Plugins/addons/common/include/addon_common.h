/*
 * addon_common.h - what every first-party add-on shares: the entry
 * handshake, the instance (host table + context), config reads, qrexec
 * calls, and whole-buffer I/O. Linked statically into each add-on; a
 * vendor add-on needs none of it (see Plugins/examples/hello-addon).
 */
#ifndef ODYSSEY_ADDON_COMMON_H
#define ODYSSEY_ADDON_COMMON_H

#include <odyssey_plugin.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ODY_ADDON_EXPORT __attribute__((visibility("default")))

/* The instance every first-party add-on uses. */
struct ody_addon {
    const ody_host_services *host;
    void *ctx;
    char name[64];
};

/* What the entry point answers, in one place. */
struct addon_definition {
    const char *id;
    const char *version;
    const char *license;
    const char *description;
    const ody_factory *factory;
};

int32_t addon_entry(const struct addon_definition *def, const ody_entry_request *req,
                    ody_plugin_info *info, ody_error *err);
int32_t addon_open(const ody_instance_args *args, ody_addon **out, ody_error *err);
void addon_close(ody_addon *a, uint32_t flags);

/* Config value of this add-on's [addon.NAME] section; fallback if unset. */
const char *addon_config(ody_addon *a, const char *key, char *buf, size_t size, const char *fallback);
uint64_t addon_config_u64(ody_addon *a, const char *key, uint64_t fallback);

/* Log through the host (stderr in odyssey-addon-run). printf-style. */
void addon_log(ody_addon *a, uint32_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A qrexec call under the host's policy: 0 and *fd (a socket: write = the
 * service's stdin, shutdown(SHUT_WR) its EOF; read = its stdout), or -1 with
 * a message on stderr_fd. addon_call_finish returns the service's exit
 * status (126 refused, 127 no such service). */
int addon_call(ody_addon *a, const char *target, const char *service, int *fd, uint64_t *call, int stderr_fd);
int addon_call_finish(ody_addon *a, uint64_t call);

/* Whole-buffer I/O, retrying EINTR and short transfers. write_all: 0 or -1
 * (errno). read_exact: 0, or -1 on error or early EOF (errno 0 for EOF).
 * read_upto: bytes read (< size only at EOF), or -1. */
int write_all(int fd, const void *buf, size_t size);
int read_exact(int fd, void *buf, size_t size);
ssize_t read_upto(int fd, void *buf, size_t size);

/* "error: ..." style line on fd (a command's stderr or a service's). */
void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling domain's uuid (36 characters, canonical lower case) of the
 * service call this process runs: QREXEC_REMOTE_DOMAIN_UUID, which the
 * agent sets from the host's command line (never the caller). 0 and out
 * filled, or -1 (absent or not canonical: an older host; no uuid). */
#define ADDON_UUID_SIZE 37
int addon_caller_uuid(char out[ADDON_UUID_SIZE]);

/* 1 if the file system holding fd would still have min_free_percent of
 * its blocks free after `more` bytes are written, else 0. 1 as well when
 * min_free_percent is 0 or the file system cannot say (statfs fails or
 * reports no blocks): the check bounds what another domain can fill, it
 * never invents a failure. */
int addon_fs_has_room(int fd, uint64_t more, uint64_t min_free_percent);

/* A directory only this user can use, for state an add-on keeps between
 * calls: $XDG_RUNTIME_DIR/LEAF when that runtime directory exists, else
 * /tmp/LEAF-UID (a service started outside a session may have no
 * XDG_RUNTIME_DIR, or one that does not exist); created 0700 if missing,
 * opened O_NOFOLLOW, and refused unless it is a directory of this user
 * with no group or other access. An open descriptor, or -1 with the
 * reason in why. */
int addon_private_dir(const char *leaf, char *why, size_t why_size);

/* One of `max` concurrent slots for `key` (a checked domain name): an open
 * descriptor holding an exclusive flock on DIR/busy-KEY.N (N < max);
 * closing it frees the slot, and so does the end of the process, however
 * it ends. -1 with errno EBUSY when all `max` are held, or another errno. */
int addon_take_slot(int dir, const char *key, uint64_t max);

/* Checks struct sizes and flags of a run_service / run_command call. */
int32_t addon_check_service_call(const ody_service_call *call, int32_t *exit_status, uint32_t flags, ody_error *err);
int32_t addon_check_command_call(const ody_command_call *call, int32_t *exit_status, uint32_t flags, ody_error *err);

#endif
