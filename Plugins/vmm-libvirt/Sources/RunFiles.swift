// The per-start files of a StartPlan: made just before libvirt creates the
// domain, removed once it is off (stop, kill, crash, undefine). qemu-img is
// spawned with an argv (never a shell: paths come from the host and may hold
// any character but a control one). Removal is idempotent and touches only
// the plan's own files, which StartPlan keeps under the run directory.
import Glibc
import LibvirtDomainXML

enum RunFiles {
    struct Failure: Error { let message: String }

    /// Makes every file of `plan`; on a failure, removes what it made.
    static func prepare(_ plan: StartPlan) throws(Failure) {
        if !plan.runDir.isEmpty {
            try makeDirectory(plan.runDir, what: "run_dir")
            try searchableByQemu(plan.runDir)
        }
        if !plan.channelDir.isEmpty { try makeDirectory(plan.channelDir, what: "channel socket directory") }
        do throws(Failure) {
            for s in plan.snapshots {
                unlink(s.file)  // a layer left by a crashed odysseyd: this start begins from the base again
                guard access(s.base, R_OK) == 0 else {
                    throw Failure(message: "snapshot base \(s.base): \(String(cString: strerror(errno)))")
                }
                try readableByQemu(s.base)
                try run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", s.base, s.file])
            }
            for s in plan.scratch {
                unlink(s.file)
                let fd = open(s.file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw Failure(message: "scratch disk \(s.file): \(String(cString: strerror(errno)))") }
                defer { Glibc.close(fd) }
                guard ftruncate(fd, off_t(s.sizeMiB) * 1024 * 1024) == 0 else {
                    throw Failure(message: "scratch disk \(s.file) (\(s.sizeMiB) MiB): \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            remove(plan)
            throw error
        }
    }

    /// Removes the plan's files (not the console log: a failed boot is read from it).
    static func remove(_ plan: StartPlan) {
        for f in plan.files { unlink(f) }
        // The channel's directory goes too once libvirt removed its socket
        // (rmdir of a non-empty directory fails, and is left for the next stop).
        if !plan.channelDir.isEmpty { rmdir(plan.channelDir) }
    }

    /// True if any of the plan's files exists (tests and logs).
    static func anyExists(_ plan: StartPlan) -> Bool { plan.files.contains { access($0, F_OK) == 0 } }

    /// libvirt's DAC driver chowns the files of a start to the user QEMU
    /// runs as (libvirt-qemu with scripts/libvirtd-up), never directories:
    /// that user must be able to pass through the run directory (search
    /// only; it cannot list it).
    private static func searchableByQemu(_ path: String) throws(Failure) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure(message: "run_dir \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IXOTH == 0 else { return }
        guard chmod(path, (st.st_mode & 0o7777) | S_IXOTH) == 0 else {
            throw Failure(message: "run_dir \(path): cannot let QEMU's user through (chmod o+x): \(String(cString: strerror(errno)))")
        }
    }

    /// A snapshot's base is never relabelled (DomainXML: other domains
    /// share it), so QEMU's user reads it through its mode: a base others
    /// cannot read (a disposable template's private, 0600) is given to
    /// QEMU's group read-only (0640). Nothing to do where QEMU runs as root
    /// (no libvirt-qemu group).
    private static func readableByQemu(_ path: String) throws(Failure) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure(message: "snapshot base \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IROTH == 0, let g = getgrnam("libvirt-qemu") else { return }
        let gid = g.pointee.gr_gid
        if st.st_gid == gid && st.st_mode & S_IRGRP != 0 { return }
        guard chown(path, st.st_uid, gid) == 0, chmod(path, (st.st_mode & 0o7777 & ~S_IWGRP) | S_IRGRP) == 0 else {
            throw Failure(message: "snapshot base \(path): cannot let QEMU's group read it: \(String(cString: strerror(errno)))")
        }
    }

    private static func makeDirectory(_ path: String, what: String) throws(Failure) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw Failure(message: "\(what) \(path) exists and is not a directory") }
            return
        }
        // Parents first (the host normally made them); each new one is 0700 root.
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectory(String(path[..<slash]), what: what)
        }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw Failure(message: "cannot make \(what) \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `argv` (argv[0] looked up in PATH), waits, and fails with its stderr.
    private static func run(_ argv: [String]) throws(Failure) {
        var fds: [Int32] = [0, 0]
        // pipe2 is not visible to Swift here; close-on-exec right after (the
        // window only matters to a child another thread spawns in between).
        guard pipe(&fds) == 0 else { throw Failure(message: "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
        Glibc.close(fds[1])
        defer { Glibc.close(fds[0]) }
        guard rc == 0 else {
            throw Failure(message: "cannot run \(argv[0]): \(String(cString: strerror(rc)))"
                + (rc == ENOENT ? " (install qemu-utils: scripts/install-deps)" : ""))
        }
        // Bounded: only the first 2 KiB of what it says is kept for the message.
        var output: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if output.count < 2048 { output += buf[0..<min(n, 2048 - output.count)] }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            let text = String(decoding: output, as: UTF8.self).split(separator: "\n").joined(separator: "; ")
            // What it said first: the ABI's error message is bounded, and its
            // stderr names the file (the whole argv would crowd it out).
            throw Failure(message: "\(argv.prefix(2).joined(separator: " ")) failed (\(exited ? "exit \(code)" : "signal \(status & 0x7f)")): \(text)")
        }
    }
}

/// Whether QEMU can use hardware virtualisation here: /dev/kvm must open
/// read-write AND be backed by kvm_intel or kvm_amd. A PVM host (kvm_pvm, as
/// on this project's CI machine) also has /dev/kvm, but only PVM-enabled
/// guest kernels run on it, so stock guests must use TCG.
enum HardwareVirt {
    static let usable: Bool = {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        Glibc.close(fd)
        return access("/sys/module/kvm_intel", F_OK) == 0 || access("/sys/module/kvm_amd", F_OK) == 0
    }()
}
