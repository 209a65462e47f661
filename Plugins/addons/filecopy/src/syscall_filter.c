/*
 * syscall_filter.c - the last layer around the unpacking child: once the
 * stream starts, the process may make only the system calls unpacking
 * needs; anything else fails with EPERM. If a bug in the parser ever gave
 * a sender code execution, that code could still only create, write,
 * link and remove files through descriptors it has, inside the directory
 * the confinement (confine.c) allows: no exec, no sockets, no chmod or
 * chown by path (Landlock does not cover those), no ptrace, no namespaces.
 *
 * Installed after the CRC thread exists (SECCOMP_FILTER_FLAG_TSYNC puts it
 * on both threads), so creating threads is not on the list.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#endif

/* The busiest first: the filter is a list walked in order (kernels from
 * 5.11 also cache "always allowed" numbers and skip it entirely). */
static const int allowed[] = {
    /* the stream, the files, stderr, the report */
    SYS_write, SYS_read, SYS_openat, SYS_utimensat, SYS_linkat, SYS_close, SYS_mkdirat, SYS_symlinkat,
    SYS_renameat2, SYS_unlinkat, SYS_newfstatat, SYS_fstat, SYS_fchmod, SYS_lseek, SYS_sync_file_range,
    SYS_fstatfs,   /* the free space kept on the file system (unpack.c) */
#ifdef SYS_statx
    SYS_statx,
#endif
    /* memory and the CRC thread (starting, waiting, ending) */
    SYS_futex, SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise, SYS_rt_sigprocmask,
    SYS_rt_sigreturn, SYS_set_robust_list, SYS_getpid, SYS_gettid, SYS_clock_gettime, SYS_getrandom, SYS_exit,
    SYS_exit_group, SYS_sched_yield,
#ifdef SYS_rseq
    SYS_rseq,
#endif
};

int fc_filter_syscalls(char *why, size_t size) {
#ifndef FILTER_ARCH
    (void)why;
    (void)size;
    return 0;   /* an architecture this list was not written for: the confinement stands alone */
#else
    enum { N = sizeof allowed / sizeof allowed[0] };
    _Static_assert(N < 255, "BPF jump offsets are 8 bits");
    struct sock_filter prog[N + 8];
    size_t k = 0;
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    /* x32 system calls (bit 30) would bypass the numbers below: jump over
     * the N comparisons to the refusal right after them (N, not N + 1,
     * which would land on the allow). */
    prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, (uint8_t)N, 0);
#endif
    for (size_t i = 0; i < N; i++)
        prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)allowed[i], (uint8_t)(N - i), 0);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog fprog = {.len = (unsigned short)k, .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog) != 0) {
        snprintf(why, size, "cannot install the system call filter (%s)", strerror(errno));
        return -1;
    }
    return 0;
#endif
}
