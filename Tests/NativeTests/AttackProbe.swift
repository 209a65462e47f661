// The attacker inside a domain: a static C program the hardening tests
// compile into the template (/bin/attack). Each mode prints key=value lines
// (an errno name, or ALLOWED) for the test to read back.
//   attack syscalls          refused calls: 32-bit argument tricks, io_uring,
//                            netlink audit/uevent, vsock, pidfd_getfd, ...
//   attack pid1              PID 1 from domain root: /proc/1/mem, /proc/1/fd
//   attack connect PATH LABEL [UID]
//                            connects to a host channel socket (as UID if
//                            given), writes LABEL, prints what comes back
//   attack deep N            N nested directories under the cwd
import Foundation

enum AttackProbe {
    static func build(into path: String) throws {
        if FileManager.default.isExecutableFile(atPath: path) { return }
        let src = Fixtures.base + "/attack.c"
        try source.write(toFile: src, atomically: true, encoding: .utf8)
        guard let cc = ["/usr/bin/cc", "/usr/bin/gcc"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw NSError(domain: "AttackProbe", code: 1, userInfo: [NSLocalizedDescriptionKey: "no C compiler for the attack probe"])
        }
        _ = try Fixtures.run(cc, ["-static", "-O1", "-o", path, src])
    }

    static let source = #"""
    #define _GNU_SOURCE
    #include <errno.h>
    #include <fcntl.h>
    #include <poll.h>
    #include <signal.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/ioctl.h>
    #include <sys/resource.h>
    #include <sys/socket.h>
    #include <sys/stat.h>
    #include <sys/syscall.h>
    #include <sys/uio.h>
    #include <sys/un.h>
    #include <unistd.h>
    #include <linux/netlink.h>
    #include <termios.h>

    static void report(const char *name, long rc) {
        printf("%s=%s\n", name, rc < 0 ? strerrorname_np(errno) : "ALLOWED");
        if (rc >= 0 && strncmp(name, "socket", 6) == 0) close((int)rc);
        fflush(stdout);
    }

    static int syscalls(void) {
        char c = 'x';
        /* fd -1: the kernel would say EBADF; only seccomp says EPERM. */
        report("tiocsti", syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, &c));
        report("tiocsti_high_bits", syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI | (1UL << 32), &c));
        report("tioclinux_high_bits", syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX | (7UL << 40), &c));
        char params[120];
        memset(params, 0, sizeof params);
        report("io_uring_setup", syscall(SYS_io_uring_setup, 1, params));
        report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
        report("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
        report("socket_netlink_audit", socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT));
        report("socket_netlink_audit_high_bits", syscall(SYS_socket, (long)AF_NETLINK | (1L << 32), SOCK_RAW, (long)NETLINK_AUDIT | (1L << 33)));
        report("socket_netlink_uevent", socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT));
        report("socket_netlink_route", socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
        /* Never connected: a refused socket() is all this checks. */
        report("socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM | SOCK_CLOEXEC, 0));
        report("socket_vsock_high_bits", syscall(SYS_socket, 40L | (1L << 32), SOCK_STREAM, 0));
        report("socket_unix", socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        int pidfd = (int)syscall(SYS_pidfd_open, 1, 0);
        report("pidfd_open_1", pidfd);
        report("pidfd_getfd", syscall(SYS_pidfd_getfd, pidfd, 1, 0));
        char buf[16];
        struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
        report("process_vm_readv", syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
        report("process_vm_writev", syscall(SYS_process_vm_writev, 1, &local, 1, &remote, 1, 0));
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        printf("nofile_soft=%lu\nnofile_hard=%lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
        rl.rlim_max = rl.rlim_max * 4;
        rl.rlim_cur = rl.rlim_max;
        report("raise_nofile", setrlimit(RLIMIT_NOFILE, &rl));
        return 0;
    }

    static int pid1(void) {
        report("open_proc1_mem_rw", open("/proc/1/mem", O_RDWR | O_CLOEXEC));
        report("open_proc1_mem_ro", open("/proc/1/mem", O_RDONLY | O_CLOEXEC));
        char link[256];
        report("readlink_proc1_fd1", readlink("/proc/1/fd/1", link, sizeof link));
        report("open_proc1_fd1", open("/proc/1/fd/1", O_WRONLY | O_CLOEXEC));
        report("open_proc1_environ", open("/proc/1/environ", O_RDONLY | O_CLOEXEC));
        int pidfd = (int)syscall(SYS_pidfd_open, 1, 0);
        report("pidfd_getfd", syscall(SYS_pidfd_getfd, pidfd, 1, 0));
        report("ptrace_attach", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
        return 0;
    }

    static int connect_to(const char *path, const char *label, const char *uid) {
        if (uid) {
            if (setgid(atoi(uid)) != 0 || setuid(atoi(uid)) != 0) { printf("setuid=%s\n", strerrorname_np(errno)); return 1; }
        }
        signal(SIGPIPE, SIG_IGN);   /* a refused connection may be reset under our write */
        printf("uid=%d\n", getuid());
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { printf("connect=%s\n", strerrorname_np(errno)); return 0; }
        printf("connect=ALLOWED\n");
        char msg[64];
        int n = snprintf(msg, sizeof msg, "%s\n", label);
        if (write(s, msg, (size_t)n) != n) printf("write=%s\n", strerrorname_np(errno));
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) { printf("got=TIMEOUT\n"); return 0; }
        char in[128];
        ssize_t r = read(s, in, sizeof in - 1);
        if (r < 0) { printf("got=%s\n", strerrorname_np(errno)); return 0; }
        if (r == 0) { printf("got=EOF\n"); return 0; }
        in[r] = 0;
        char *nl = strchr(in, '\n');
        if (nl) *nl = 0;
        printf("got=%s\n", in);
        if (strcmp(label, "hold") == 0) for (;;) pause();   /* stay PID 1: the domain lives on */
        return 0;
    }

    static int deep(long n, const char *link_target) {
        for (long i = 0; i < n; i++) {
            if (mkdir("d", 0755) != 0 && errno != EEXIST) { printf("deep_error=%s at %ld\n", strerrorname_np(errno), i); return 1; }
            if (chdir("d") != 0) { printf("deep_error=%s at %ld\n", strerrorname_np(errno), i); return 1; }
            if (i % 1000 == 0) {   /* some files and links along the way */
                int fd = open("f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                if (fd >= 0) close(fd);
                symlink(link_target, "link");
            }
        }
        printf("deep=%ld\n", n);
        return 0;
    }

    int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && strcmp(argv[1], "syscalls") == 0) return syscalls();
        if (argc >= 2 && strcmp(argv[1], "pid1") == 0) return pid1();
        if (argc >= 4 && strcmp(argv[1], "connect") == 0) return connect_to(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
        if (argc >= 4 && strcmp(argv[1], "deep") == 0) return deep(atol(argv[2]), argv[3]);
        fprintf(stderr, "usage: attack syscalls|pid1|connect PATH LABEL [UID]|deep N TARGET\n");
        return 2;
    }
    """#
}
