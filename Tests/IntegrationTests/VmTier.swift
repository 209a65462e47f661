// What every VM-tier test shares (issue 12): the check that QEMU can run
// here, a real detached odysseyd with vmm-libvirt on qemu:///system and an
// owner of its own, the cleanup of every libvirt domain that daemon defined
// (a VM outlives its daemon by design), and a host command's output.
import Foundation
import XCTest

enum VmTier {
    /// Skips (saying why) only where QEMU cannot run; `make test` installs
    /// QEMU and runs the kit and libvirtd-up first, so on this machine it runs.
    /// Returns the guest kernel pool.
    static func require() throws -> String {
        guard geteuid() == 0 else { throw XCTSkip("the VM tier needs root (libvirtd, QEMU)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            throw XCTSkip("qemu-system-x86_64 is not installed (scripts/install-deps installs it)")
        }
        let pool = ProcessInfo.processInfo.environment["ODYSSEY_KERNEL_DIR"] ?? "/var/lib/odyssey/vm-kernels"
        guard FileManager.default.fileExists(atPath: pool + "/default/vmlinuz") else {
            XCTFail("no guest kernel in \(pool): run scripts/guest-kit (make test does)")
            throw XCTSkip("no guest kernel")
        }
        let up = Process()
        up.executableURL = URL(fileURLWithPath: Build.root + "/scripts/libvirtd-up")
        up.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try up.run(); up.waitUntilExit()
        guard up.terminationStatus == 0 else { XCTFail("scripts/libvirtd-up failed"); throw XCTSkip("libvirtd is not running") }
        return pool
    }

    /// A started daemon (state under a fresh directory named after `label`)
    /// whose libvirt domains carry the owner `test-OWNER`.
    static func daemon(_ label: String, owner: String, pool: String) throws -> DaemonProcess {
        let dp = try DaemonProcess(label, extraConfig: """
            kernel_dir = "\(pool)"
            [vmm.libvirt]
            uri = "qemu:///system"
            owner = "test-\(owner)"
            [vchan.virtio-serial]
            """)
        // (the socket_dir default /run/odyssey/vport is per domain name; names are unique here)
        try dp.start()
        return dp
    }

    /// Destroys and undefines every libvirt domain carrying the owner
    /// `test-OWNER` (disposables included, named dispNNNN by the host).
    static func removeDomains(owner: String) {
        guard !owner.isEmpty else { return }
        let virsh = "/usr/bin/virsh"
        let names = ((try? sh(virsh, ["-c", "qemu:///system", "list", "--all", "--name"]))?.1 ?? "").split(separator: "\n")
        for n in names.map(String.init) where !n.isEmpty {
            guard let xml = try? sh(virsh, ["-c", "qemu:///system", "dumpxml", n]).1,
                  xml.contains("<owner>test-\(owner)</owner>") else { continue }
            _ = try? sh(virsh, ["-c", "qemu:///system", "destroy", n])
            _ = try? sh(virsh, ["-c", "qemu:///system", "undefine", n])
        }
    }

    /// Runs a host program; its status and its stdout and stderr together.
    @discardableResult
    static func sh(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process(); p.executableURL = URL(fileURLWithPath: exe); p.arguments = args
        let o = Pipe(); p.standardOutput = o; p.standardError = o
        try p.run()
        let d = o.fileHandleForReading.readDataToEndOfFile(); p.waitUntilExit()
        return (p.terminationStatus, String(decoding: d, as: UTF8.self))
    }
}
