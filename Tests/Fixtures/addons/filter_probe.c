/*
 * filter_probe.c - installs filecopy's system call filter (syscall_filter.c,
 * compiled in beside this file) and prints what three calls return:
 * an allowed one (getpid), a refused one (getppid), and the refused one
 * with the x32 bit set, which must be refused too, not passed to the kernel.
 */
#define _GNU_SOURCE
#include "filecopy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *outcome(long rc) {
    if (rc >= 0) return "allowed";
    return errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : strerror(errno);
}

int main(void) {
    char why[256];
    if (fc_filter_syscalls(why, sizeof why) != 0) {
        printf("no filter: %s\n", why);
        return 1;
    }
    char line[256];
    long a = syscall(SYS_getpid);
    const char *sa = outcome(a);
    long b = syscall(SYS_getppid);
    const char *sb = outcome(b);
#if defined(__x86_64__)
    long c = syscall(0x40000000L | SYS_getppid);
    const char *sc = outcome(c);
#else
    const char *sc = "EPERM";   /* no x32 elsewhere */
#endif
    int n = snprintf(line, sizeof line, "getpid %s, getppid %s, x32 getppid %s\n", sa, sb, sc);
    return write(1, line, (size_t)n) == n ? 0 : 1;
}
