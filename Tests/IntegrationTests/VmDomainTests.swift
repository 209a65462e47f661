// The VM tier (issue 12): a libvirt/QEMU domain beside native ones, under one
// policy, driven the way a user drives them (a real detached odysseyd, `ody`,
// `ody-call` and `ody-copy` inside domains). Real libvirtd (scripts/libvirtd-up),
// real QEMU (TCG here), the guest kit's kernel (scripts/guest-kit). TCG boots
// take ~10 s each, so one daemon and few boots serve many checks.
import Foundation
import XCTest

final class VmDomainTests: XCTestCase {
    private var dp: DaemonProcess!
    private var vm = ""

    override func tearDown() {
        dp?.tearDown()
        VmTier.removeDomains(owner: vm)   // a VM outlives its daemon by design: none of ours is left
    }

    @discardableResult
    private func sh(_ exe: String, _ args: [String]) throws -> (Int32, String) { try VmTier.sh(exe, args) }

    /// A daemon with native and libvirt domains, a busybox template holding
    /// a test service, and a policy allowing it and file copies.
    private func makeDaemon() throws {
        let pool = try VmTier.require()
        vm = "vm\(UUID().uuidString.prefix(6).lowercased())"
        dp = try VmTier.daemon("vm", owner: vm, pool: pool)
        let rootfs = try Build.busyboxRootfs(at: dp.dir + "/rootfs")
        try FileManager.default.createDirectory(atPath: rootfs + "/etc/qubes-rpc", withIntermediateDirectories: true)
        try "#!/bin/sh\nread line\necho \"$(hostname) got '$line' from $QREXEC_REMOTE_DOMAIN\"\n"
            .write(toFile: rootfs + "/etc/qubes-rpc/test.Echo", atomically: true, encoding: .utf8)
        chmod(rootfs + "/etc/qubes-rpc/test.Echo", 0o755)
        // The add-ons' runner is a C program linked against glibc (it runs in
        // every domain's own libc): the busybox root gets the two files it needs.
        for lib in ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"] {
            try FileManager.default.createDirectory(atPath: rootfs + (lib as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: lib)).map {
                $0.hasPrefix("/") ? $0 : (lib as NSString).deletingLastPathComponent + "/" + $0 } ?? lib, toPath: rootfs + lib)
        }
        for applet in ["uname", "cut", "sha256sum", "stat"] {
            try? FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        var r = try dp.ody(["template", "create", "tpl", "--from-rootfs", rootfs])
        XCTAssertEqual(r.0, 0, r.1)
        let policy = dp.dir + "/state/policy.d"
        try FileManager.default.createDirectory(atPath: policy, withIntermediateDirectories: true)
        try """
            test.Echo * @anyvm @anyvm allow
            qubes.Filecopy * @anyvm @anyvm allow
            """.write(toFile: policy + "/30-vm-tier.policy", atomically: true, encoding: .utf8)
        r = try dp.ody(["create", "nat", "--class", "AppVM", "--template", "tpl", "--label", "blue"])
        XCTAssertEqual(r.0, 0, r.1)
        r = try dp.ody(["create", vm, "--class", "AppVM", "--template", "tpl", "--label", "red", "--prop", "vmm=libvirt"])
        XCTAssertEqual(r.0, 0, r.1)
    }

    private func run(_ d: String, _ cmd: String) throws -> (Int32, String) {
        try dp.ody(["run", "-p", "-u", "user", d, "--", cmd])
    }

    func testAVmDomainDoesWhatANativeDomainDoes() throws {
        try makeDaemon()
        var r = try dp.ody(["start", "nat"])
        XCTAssertEqual(r.0, 0, r.1)
        let t0 = Date()
        r = try dp.ody(["start", vm])
        XCTAssertEqual(r.0, 0, "VM start: \(r.1)\n--- daemon log ---\n\(dp.log.suffix(3000))")
        print("VM tier: \(vm) start to agent ready \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        guard r.0 == 0 else { return }

        // Its QEMU runs as a uid of its own (vmm-libvirt's qemu_uid_start range), and
        // its private image is that uid's alone while it runs: another VM's QEMU cannot open it.
        let qemuUid = Self.qemuUid(of: vm)
        XCTAssertNotNil(qemuUid, "no QEMU process for \(vm)")
        if let u = qemuUid {
            XCTAssertTrue((900_000..<965_536).contains(u), "QEMU of \(vm) runs as uid \(u), not one of its own")
            var st = stat()
            XCTAssertEqual(stat(dp.dir + "/state/domains/\(vm)/private.img", &st), 0)
            XCTAssertEqual(st.st_uid, u)
            XCTAssertEqual(st.st_mode & 0o077, 0, "the private image is open to others")
        }

        // Its own kernel: uname -r differs from the host's (and from nat's, which is the host's).
        let host = try sh("/bin/uname", ["-r"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
        r = try run(vm, "uname -r")
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertNotEqual(r.1.trimmingCharacters(in: .whitespacesAndNewlines), host)
        XCTAssertEqual(try run("nat", "uname -r").1.trimmingCharacters(in: .whitespacesAndNewlines), host)
        XCTAssertEqual(try run(vm, "hostname").1, "\(vm)\n")
        r = try dp.ody(["run", "-p", vm, "--", "id -u; exit 7"])
        XCTAssertEqual(r.0, 7, r.1)

        // qrexec both ways under the one policy; the caller's name comes from its channel.
        r = try run("nat", "echo hi | ody-call \(vm) test.Echo")
        XCTAssertEqual(r.1, "\(vm) got 'hi' from nat\n", r.1)
        r = try run(vm, "echo ho | ody-call nat test.Echo")
        XCTAssertEqual(r.1, "nat got 'ho' from \(vm)\n", r.1)

        // A file copy native -> VM, checksummed.
        r = try run("nat", "dd if=/dev/urandom of=blob bs=1M count=8 2>/dev/null && sha256sum blob | cut -d' ' -f1 && ody-copy --to \(vm) blob")
        XCTAssertEqual(r.0, 0, r.1)
        let sum = r.1.split(separator: "\n").first.map(String.init) ?? "?"
        r = try run(vm, "sha256sum QubesIncoming/nat/blob | cut -d' ' -f1")
        XCTAssertEqual(r.1, sum + "\n", r.1)

        // The private volume persists across a restart of the VM.
        XCTAssertEqual(try run(vm, "echo kept > /home/user/note && sync").0, 0)
        // Pause and unpause.
        XCTAssertEqual(try dp.ody(["pause", vm]).0, 0)
        XCTAssertTrue(try dp.ody(["ls"]).1.contains("Paused"))
        XCTAssertEqual(try dp.ody(["unpause", vm]).0, 0)
        XCTAssertEqual(try run(vm, "cat /home/user/note").1, "kept\n")

        // odysseyd SIGKILLed and restarted: the VM kept running and is re-adopted.
        kill(dp.pid, SIGKILL)
        for _ in 0..<100 where dp.alive { usleep(20_000) }
        try dp.start()
        var adopted = false
        for _ in 0..<60 {
            if try run(vm, "echo back").1 == "back\n" { adopted = true; break }
            sleep(1)
        }
        XCTAssertTrue(adopted, "the VM's agent did not reconnect after the daemon restart:\n\(dp.log.suffix(2000))")

        // Shut down and back: /home/user/note is still there.
        r = try dp.ody(["shutdown", "--wait", vm])
        XCTAssertEqual(r.0, 0, r.1)
        r = try dp.ody(["start", vm])
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(try run(vm, "cat /home/user/note").1, "kept\n")

        // A QEMU killed from outside: the domain is no longer running, its volumes are cleaned.
        let pidText = try sh("/bin/sh", ["-c", "cat /run/libvirt/qemu/\(vm).pid"]).1
        if let qemu = pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(qemu, SIGKILL)
            var gone = false
            for _ in 0..<100 {
                if try dp.ody(["ls"]).1.split(separator: "\n").contains(where: { $0.hasPrefix(vm) && $0.contains("Halted") }) { gone = true; break }
                usleep(100_000)
            }
            let listing = try dp.ody(["ls"]).1
            XCTAssertTrue(gone, "a QEMU killed from outside must halt the domain:\n\(listing)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dp.dir + "/state/run/\(vm)/root.qcow2"), "the per-start snapshot must go")
        } else {
            XCTFail("no QEMU pid for \(vm): \(pidText)")
        }

        // `ody prefs D vmm native`: the same domain, the same private volume,
        // now in namespaces at its next start; nothing rebuilt.
        XCTAssertEqual(try dp.ody(["prefs", vm, "vmm", "native"]).0, 0)
        r = try dp.ody(["start", vm])
        XCTAssertEqual(r.0, 0, r.1)
        // The same private volume: what the VM wrote is there, owned as the
        // domain saw it (the volume holds the guest's own ids, whoever ran it),
        // so user still owns and writes its files.
        let listed = try dp.ody(["run", "-p", "-u", "root", vm, "--", "ls -A /rw/home"])
        XCTAssertEqual(listed.0, 0, listed.1)
        XCTAssertTrue(listed.1.split(separator: "\n").contains("user"), "the VM's /rw/home/user, seen natively: \(listed.1)")
        r = try run(vm, "stat -c '%u:%g' /home/user /home/user/note; cat /home/user/note; echo more >> /home/user/note && echo written")
        XCTAssertEqual(r.1, "1000:1000\n1000:1000\nkept\nwritten\n", "owners of the VM's files after the switch to native: \(r.1)")
        XCTAssertEqual(try run(vm, "uname -r").1.trimmingCharacters(in: .whitespacesAndNewlines), host)
        XCTAssertEqual(try dp.ody(["kill", vm]).0, 0)
    }

    /// The uid of the QEMU process running libvirt domain `name` (its command line says guest=NAME,).
    static func qemuUid(of name: String) -> uid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in entries where pid.allSatisfy(\.isNumber) {
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  String(decoding: cmd, as: UTF8.self).contains("guest=\(name),") else { continue }
            var st = stat()
            if stat("/proc/\(pid)", &st) == 0 { return st.st_uid }
        }
        return nil
    }

    func testDisposablesFromAVmDisposableTemplate() throws {
        try makeDaemon()
        let dvm = vm + "-dvm"
        var r = try dp.ody(["create", dvm, "--class", "AppVM", "--template", "tpl", "--label", "red",
                            "--prop", "vmm=libvirt", "--prop", "template_for_dispvms=True"])
        XCTAssertEqual(r.0, 0, r.1)
        // A fresh disposable: a VM booted for one command, destroyed after it.
        r = try dp.ody(["run", "-p", "@dispvm:\(dvm)", "--", "echo \"in $(hostname): $(uname -r)\""])
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertTrue(r.1.hasPrefix("in disp"), r.1)
        var gone = false
        for _ in 0..<60 {   // destroyed after its command (the host does not make the caller wait for it)
            if !(try dp.ody(["ls"]).1.contains("disp")) { gone = true; break }
            usleep(250_000)
        }
        let after = try dp.ody(["ls"]).1
        XCTAssertTrue(gone, "the disposable is gone after its command: \(after)")
        // Preloaded: one started and paused in advance, handed out on the next call.
        XCTAssertEqual(try dp.ody(["features", dvm, "preload-dispvm-max", "1"]).0, 0)
        var preloaded = false
        for _ in 0..<90 {
            if try dp.ody(["ls"]).1.split(separator: "\n").contains(where: { $0.hasPrefix("disp") && $0.contains("Paused") }) { preloaded = true; break }
            sleep(1)
        }
        let listing = try dp.ody(["ls"]).1
        XCTAssertTrue(preloaded, "no preloaded VM disposable appeared:\n\(listing)\n\(dp.log.suffix(1500))")
        let t0 = Date()
        r = try dp.ody(["run", "-p", "@dispvm:\(dvm)", "--", "echo preloaded in $(hostname)"])
        XCTAssertEqual(r.0, 0, r.1)
        print("VM tier: preloaded VM disposable answered in \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
        XCTAssertEqual(try dp.ody(["features", dvm, "preload-dispvm-max", "0"]).0, 0)
    }

    func testAGuestThatDoesNotSayHelloInTimeFailsItsStart() throws {
        try makeDaemon()
        XCTAssertEqual(try dp.ody(["prefs", vm, "qrexec_timeout", "2"]).0, 0)
        let r = try dp.ody(["start", vm])
        XCTAssertNotEqual(r.0, 0)
        XCTAssertTrue(r.1.contains("not ready") || r.1.contains("timed out") || r.1.contains("within"), r.1)
        XCTAssertTrue(try dp.ody(["ls"]).1.split(separator: "\n").contains { $0.hasPrefix(vm) && $0.contains("Halted") })
        let listed = try sh("/usr/bin/virsh", ["-c", "qemu:///system", "list", "--name"]).1
        XCTAssertFalse(listed.split(separator: "\n").contains(Substring(vm)), "the VM must be gone: \(listed)")
    }
}
