// Test fixtures: a busybox template root, a syscall probe, per-test state
// dirs and cgroup parents, and host-side observations of a domain.
import Foundation
import XCTest

enum Fixtures {
    /// Root of everything the tests create; removed by the last tearDown.
    static let base = "/tmp/odyssey-native-tests-\(getpid())"
    static var template: String { base + "/template" }

    /// Built once per process: busybox + applet links, /etc, the probe.
    nonisolated(unsafe) private static var built = false

    static func requireRoot() throws {
        guard geteuid() == 0 else {
            throw XCTSkip("vmm-native tests need root (namespaces, cgroup v1 limits, idmapped mounts); CI runs them as root")
        }
    }

    static func removeAll() {
        try? FileManager.default.removeItem(atPath: base)
        built = false
    }

    static func buildTemplate() throws {
        if built { return }
        let fm = FileManager.default
        var busybox = ["/bin/busybox", "/usr/bin/busybox"].first { fm.isExecutableFile(atPath: $0) }
        if busybox == nil {
            _ = try? run("/usr/bin/apt-get", ["install", "-y", "--no-install-recommends", "busybox-static"])
            busybox = ["/bin/busybox", "/usr/bin/busybox"].first { fm.isExecutableFile(atPath: $0) }
        }
        guard let busybox else { throw XCTSkip("busybox is missing (apt-get install busybox-static)") }
        let t = template
        for d in ["bin", "etc", "root", "mnt", "var/tmp"] { try fm.createDirectory(atPath: "\(t)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: busybox, toPath: "\(t)/bin/busybox")
        for applet in try run(busybox, ["--list"]).split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: "\(t)/bin/\(applet)", withDestinationPath: "busybox")
        }
        try "template-v1\n".write(toFile: "\(t)/etc/template-version", atomically: true, encoding: .utf8)
        try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".write(toFile: "\(t)/etc/passwd", atomically: true, encoding: .utf8)
        try buildProbe(into: "\(t)/bin/probe")
        built = true
    }

    /// A static C program that tries forbidden syscalls and prints name=ERRNO.
    static func buildProbe(into path: String) throws {
        let src = base + "/probe.c"
        try probeSource.write(toFile: src, atomically: true, encoding: .utf8)
        guard let cc = ["/usr/bin/cc", "/usr/bin/gcc"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no C compiler to build the syscall probe")
        }
        _ = try run(cc, ["-static", "-O1", "-o", path, src])
    }

    static let probeSource = #"""
    #define _GNU_SOURCE
    #include <errno.h>
    #include <fcntl.h>
    #include <sched.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/mount.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    static void report(const char *name, long rc) {
        printf("%s=%s\n", name, rc < 0 ? strerrorname_np(errno) : "ALLOWED");
    }
    int main(void) {
        report("init_module", syscall(SYS_init_module, NULL, 0, ""));
        report("finit_module", syscall(SYS_finit_module, -1, "", 0));
        report("delete_module", syscall(SYS_delete_module, "loop", 0));
        report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
        report("bpf", syscall(SYS_bpf, 0, NULL, 0));
        report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
        report("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
        report("ptrace", syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0));
        report("mount", mount("none", "/mnt", "tmpfs", 0, NULL));
        report("umount2", umount2("/proc", MNT_DETACH));
        report("pivot_root", syscall(SYS_pivot_root, ".", "."));
        report("unshare_user", unshare(CLONE_NEWUSER));
        report("unshare_mount", unshare(CLONE_NEWNS));
        report("clone3", syscall(SYS_clone3, NULL, 0));
        report("setns", setns(open("/proc/self/ns/user", O_RDONLY), 0));
        report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        report("userfaultfd", syscall(SYS_userfaultfd, 0));
        report("acct", syscall(SYS_acct, NULL));
        report("swapoff", syscall(SYS_swapoff, "/"));
        report("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0 /* CAD_OFF */, NULL));
        report("syslog", syscall(SYS_syslog, 10, NULL, 0));
        report("iopl", syscall(SYS_iopl, 3));
        report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
        report("sethostname", sethostname("evil", 4));
        return 0;
    }
    """#

    @discardableResult
    static func run(_ exe: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw NSError(domain: exe, code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: text])
        }
        return text
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// key=value lines written by a domain script.
    static func results(_ path: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in (read(path) ?? "").split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { out[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        return out
    }

    /// Host mount table lines mentioning `path`.
    static func mounts(under path: String) -> [String] {
        (read("/proc/self/mountinfo") ?? "").split(separator: "\n").map(String.init).filter { $0.contains(path) }
    }

    static func cgroupDirs(parent: String, name: String) -> [String] {
        ["memory", "pids", "freezer", "cpu", "cpuacct"].map { "/sys/fs/cgroup/\($0)/\(parent)/\(name)" }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    static func processAlive(_ pid: Int32) -> Bool {
        guard Glibc.kill(pid, 0) == 0 else { return false }
        // A zombie is dead for our purposes.
        return !(read("/proc/\(pid)/stat") ?? "").contains(") Z ")
    }
}
