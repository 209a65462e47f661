/*
 * landlock.c - confinement without privileges or namespaces: Landlock
 * (Linux 5.13+), for where chroot and unshare are refused. That is the
 * normal case inside an Odyssey native domain, whose seccomp filter
 * denies chroot, mount and new namespaces to everything in the domain.
 *
 * After fc_landlock_confine the process can open, list, create, write
 * and remove only beneath the incoming directory; it can execute nothing
 * anywhere; where the kernel knows how (Landlock ABI 4 and 6), it can
 * neither bind nor connect TCP sockets, reach abstract UNIX sockets
 * outside, nor signal other processes. What Landlock does not cover:
 * metadata (chmod, utimes) of files the user owns elsewhere; the parser
 * never names anything outside, and the chroot paths are preferred where
 * the kernel allows them.
 *
 * The constants are written here, not taken from <linux/landlock.h>: a
 * build machine's header may predate the ABI versions the kernel offers.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_DIR (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR (1ull << 6)
#define LL_FS_MAKE_DIR (1ull << 7)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_MAKE_SOCK (1ull << 9)
#define LL_FS_MAKE_FIFO (1ull << 10)
#define LL_FS_MAKE_BLOCK (1ull << 11)
#define LL_FS_MAKE_SYM (1ull << 12)
#define LL_FS_REFER (1ull << 13)      /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)  /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0)   /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

int fc_landlock_confine(int dir_fd, char *why, size_t size) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 1) {
        snprintf(why, size, "Landlock is not available (%s)", strerror(errno));
        return -1;
    }
    /* Everything the kernel can deny is handled (denied unless granted). */
    struct ll_ruleset_attr attr = {0, 0, 0};
    attr.handled_access_fs = (LL_FS_MAKE_SYM << 1) - 1;   /* ABI 1: bits 0..12 */
    if (abi >= 2) attr.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3) attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 5) attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        attr_size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        attr_size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) {
        snprintf(why, size, "cannot create a Landlock ruleset (%s)", strerror(errno));
        return -1;
    }
    /* Beneath the incoming directory: what unpacking does, nothing more
     * (no reading of files, no devices, no execution). */
    struct ll_path_beneath_attr beneath = {
        .allowed_access = LL_FS_READ_DIR | LL_FS_WRITE_FILE | LL_FS_MAKE_REG | LL_FS_MAKE_DIR | LL_FS_MAKE_SYM |
                          LL_FS_REMOVE_FILE | (abi >= 2 ? LL_FS_REFER : 0),
        .parent_fd = dir_fd,
    };
    int rc = -1;
    if (syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &beneath, 0) != 0)
        snprintf(why, size, "cannot add the Landlock rule (%s)", strerror(errno));
    else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        snprintf(why, size, "cannot set no_new_privs (%s)", strerror(errno));
    else if (syscall(SYS_landlock_restrict_self, rs, 0) != 0)
        snprintf(why, size, "cannot enforce the Landlock ruleset (%s)", strerror(errno));
    else
        rc = 0;
    close(rs);
    return rc;
}
