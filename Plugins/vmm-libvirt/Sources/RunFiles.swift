// The per-start files of a StartPlan: made just before libvirt creates the
// domain, removed once it is off (stop, kill, crash, undefine). qemu-img is
// spawned with an argv (never a shell: paths come from the host and may hold
// any character but a control one). Removal is idempotent and touches only
// the plan's own files, which StartPlan keeps under the run directory.
import Glibc
import LibvirtDomainXML
import PluginKit

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

    /// Runs `argv` (PluginKit's HelperProcess), in this file's error type.
    private static func run(_ argv: [String]) throws(Failure) {
        do throws(HelperProcess.Failure) { try HelperProcess.run(argv, hint: "install qemu-utils: scripts/install-deps") } catch {
            throw Failure(message: error.message)
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
