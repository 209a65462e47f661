// vmm-libvirt for real: libvirtd's QEMU driver (qemu:///system, TCG here),
// domains defined from the ABI 1.2 description booting the guest kit's
// kernel (LibvirtGuest). The generic vmm conformance body runs on it, then
// what only a real VM shows: the disks the guest finds by serial, the 9p
// share, the boot words, the channel port; and a QEMU killed from outside
// (kill -9) is a Crashed event with its per-start files gone, at every
// start of a long-lived instance. Five starts in all (three booted to the
// end, ~10 s each under TCG).
import Foundation
import Host
import PluginABI
import PluginKit
import XCTest

final class LibvirtQemuTests: XCTestCase {
    var fixtures: [HostFixture] = []
    /// Every name a test defined: qemu:///system keeps definitions, so a
    /// failed check must not leave its domains behind.
    let defined = DefinedNames()

    override func tearDown() {
        if let vmm = try? fixtures.last?.backends.vmm("libvirt") {
            for name in defined.names where (try? vmm.info(name)) != nil {
                try? vmm.kill(name)
                try? vmm.undefine(name)
            }
        }
        fixtures.removeAll()
        super.tearDown()
    }

    override class func tearDown() {
        LibvirtGuest.removeWorkDirectory()
        super.tearDown()
    }

    final class DefinedNames: @unchecked Sendable {
        private let lock = NSLock()
        private var set: Set<String> = []
        func add(_ n: String) { lock.lock(); set.insert(n); lock.unlock() }
        var names: [String] { lock.lock(); defer { lock.unlock() }; return Array(set) }
    }

    struct Tier {
        let fx: HostFixture
        let vmm: VmmBackend
        let guest: LibvirtGuest
        let defined: DefinedNames

        /// One directory per domain name (names hold any character).
        func dir(_ name: String) -> String {
            "\(fx.dir)/d" + name.utf8.reduce(into: UInt64(14_695_981_039_346_656_037)) { $0 = ($0 ^ UInt64($1)) &* 1_099_511_628_211 }.description
        }
        func runDir(_ name: String) -> String { dir(name) + "/run" }

        func description(_ name: String) throws -> DomainDescription {
            let fm = FileManager.default
            let d = dir(name)
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            let base = fx.dir + "/root-base.img", priv = d + "/private.img"
            for (path, mib) in [(base, 16), (priv, 8)] where !fm.fileExists(atPath: path) {
                fm.createFile(atPath: path, contents: nil)
                try FileHandle(forWritingTo: URL(fileURLWithPath: path)).truncate(atOffset: UInt64(mib) << 20)
            }
            let share = fx.dir + "/odybin"
            if !fm.fileExists(atPath: share) {
                try fm.createDirectory(atPath: share, withIntermediateDirectories: true)
                fm.createFile(atPath: share + "/hello-from-host", contents: Data("hi\n".utf8))
            }
            var desc = DomainDescription()
            desc.volumes = [VolumeDescription(role: .root, form: .image, snapshot: true, path: base),
                            VolumeDescription(role: .private, form: .image, path: priv),
                            VolumeDescription(role: .volatile, form: .none, path: "", sizeMiB: 32)]
            desc.shares = [ShareDescription(hostPath: share, guestPath: "/.odyssey/bin", tag: "odybin")]
            desc.channel = ChannelDescription(kind: .virtioSerial, path: d + "/vport/vchan.sock", name: "org.odyssey.vchan.0")
            desc.kernel = guest.kernel
            desc.initrd = guest.initrd
            desc.kernelopts = "panic=-1"
            desc.label = "red"
            desc.agentPath = "/.odyssey/bin/odyssey-agent"
            desc.agentEnv = ["ODYSSEY_TEST=1"]
            desc.runDir = runDir(name)
            return desc
        }

        /// A spec with the description (its files made); a setup failure fails the test.
        func spec(_ name: String) -> DomainSpec {
            defined.add(name)
            do {
                return DomainSpec(name: name, memoryMiB: 256, vcpus: 1, description: try description(name).hostSpec)
            } catch {
                XCTFail("test setup for \(name): \(error)")
                return DomainSpec(name: name)
            }
        }

        func define(_ name: String, flags: UInt32 = 0) throws(OdysseyError) {
            let desc: DomainDescription
            do { desc = try description(name) } catch { throw OdysseyError(.io, "test setup for \(name): \(error)") }
            defined.add(name)
            try DescribedDefine.define(vmm, DomainSpec(name: name, memoryMiB: 256, vcpus: 1), desc, flags: flags)
        }

        func console(_ name: String) -> String { (try? String(contentsOfFile: runDir(name) + "/console.log", encoding: .utf8)) ?? "" }

        func waitForConsole(_ name: String, _ line: String, seconds: Double = 120) {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if console(name).contains(line) { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
            XCTFail("guest \(name) did not print \"\(line)\" within \(Int(seconds)) s; console:\n\(console(name).suffix(2000))")
        }
    }

    final class ConsoleCopy: @unchecked Sendable { var text = "" }

    func tier() throws -> Tier {
        let guest = try LibvirtGuest.shared()
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
        [vmm.libvirt]
        uri = "qemu:///system"
        shutdown_timeout = 90
        """)
        fixtures.append(fx)
        return Tier(fx: fx, vmm: try fx.backends.vmm("libvirt"), guest: guest, defined: defined)
    }

    func testConformanceOnQemu() throws {
        let t = try tier()
        var body = VmmConformance(backend: t.vmm, recorder: t.fx.recorder, spec: { name in t.spec(name) })
        // The first boot's console, kept before the second start (kill) overwrites it.
        let firstBoot = ConsoleCopy()
        body.waitReady = { name in
            let t0 = Date()
            t.waitForConsole(name, "ODY-GUEST up")
            print("measured: guest console said ODY-GUEST up \(Int(Date().timeIntervalSince(t0) * 1000)) ms after the start returned")
            firstBoot.text = t.console(name)
        }
        try body.runAll()

        // What the guest of the lifecycle check saw.
        let name = body.prefix + "life", log = firstBoot.text
        for line in ["ODY-DISK vda odyssey-root", "ODY-DISK vdb odyssey-private", "ODY-DISK vdc odyssey-volatile",
                     "ODY-SHARE hello-from-host", "ODY-PORT org.odyssey.vchan.0", "ODY-WORD odyssey.domain=\(name)",
                     "ODY-WORD odyssey.init=/.odyssey/bin/odyssey-agent", "ODY-WORD odyssey.env=ODYSSEY_TEST=1",
                     "ODY-WORD odyssey.share=odybin:/.odyssey/bin:ro", "ODY-WORD odyssey.vchan=virtio-serial:org.odyssey.vchan.0"] {
            XCTAssertTrue(log.contains(line), "guest console lacks \"\(line)\":\n\(log.suffix(3000))")
        }
        // The guest went off by its power button, not by the destroy after the bound.
        let halted = t.fx.recorder.all.first {
            $0.domain == name && $0.kind == .lifecycle && $0.state == .halted && $0.message.hasPrefix("libvirt stopped")
        }
        XCTAssertTrue(halted?.message.hasPrefix("libvirt stopped: shutdown") == true,
                      "shutdown(wait) did not end in a guest poweroff: \(halted?.message ?? "no Halted event")")
        let leftovers = ["root.qcow2", "volatile.img"].filter { FileManager.default.fileExists(atPath: t.runDir(name) + "/" + $0) }
        XCTAssertEqual(leftovers, [], "per-start files left after stop")
    }

    /// A VM outlives the instance that started it (odysseyd SIGKILLed and
    /// restarted): a new instance lists it running with the same QEMU. Then
    /// kill -9 of that QEMU: libvirt sees its emulator die; the domain is
    /// Crashed (event) and off, and the start's files, known to the new
    /// instance only from the domain's metadata, are gone when the event arrives.
    func testRunningVMIsAdoptedAndQemuKilledFromOutsideIsCrashed() throws {
        let first = try tier()
        let name = "crash\(getpid())"
        try first.define(name)
        let t0 = Date()
        try first.vmm.start(name)
        let startSeconds = Date().timeIntervalSince(t0)
        let run = first.runDir(name)
        for f in ["root.qcow2", "volatile.img"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/\(f)"), "\(f) not made at start")
        }
        // libvirt made the channel's listening socket: the host end connects.
        let sock = first.dir(name) + "/vport/vchan.sock"
        XCTAssertTrue(Self.connects(sock), "cannot connect to the channel socket \(sock)")
        let pid = try first.vmm.info(name).pid
        XCTAssertGreaterThan(pid, 1, "no QEMU pid in get_info")
        let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        XCTAssertTrue(cmdline.contains("qemu-system"), "pid \(pid) is not QEMU: \(cmdline)")

        // The first instance goes away (its directory, holding the run dir, stays).
        first.fx.backends.closeAll()
        let second = try tier()
        XCTAssertTrue(try second.vmm.list().contains(name), "a running VM is not listed by a new instance")
        let adopted = try second.vmm.info(name)
        XCTAssertEqual(adopted.state, .running)
        XCTAssertEqual(adopted.pid, pid, "a new instance sees another QEMU")

        let t1 = Date()
        XCTAssertEqual(Glibc.kill(pid, SIGKILL), 0)
        let crashed = second.fx.recorder.lifecycle("vmm.libvirt", name, .crashed, timeout: 60)
        print("measured: start (qcow2 layer + scratch disk + virDomainCreate) \(Int(startSeconds * 1000)) ms; "
            + "kill -9 of QEMU to the Crashed event, files removed: \(Int(Date().timeIntervalSince(t1) * 1000)) ms")
        XCTAssertNotNil(crashed, "no Crashed event after kill -9 of QEMU; events: \(second.fx.recorder.all.filter { $0.domain == name })")
        Self.assertEmulatorDeath(crashed)
        for f in ["root.qcow2", "volatile.img"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(run)/\(f)"), "\(f) still there when Crashed was reported")
        }
        XCTAssertEqual(try second.vmm.info(name).state, .halted)
        XCTAssertEqual(try second.vmm.info(name).pid, -1)

        // More starts by the same instance, as a long-running odysseyd makes
        // them: each start is reported Running and each kill -9 Crashed,
        // whether libvirtd sends its events or not (the libvirtd 9.0 here was
        // seen sending none to any client; the state watch reports then).
        for round in 2...3 {
            let mark = second.fx.recorder.all.count
            try second.vmm.start(name)
            let running = Self.next(second.fx.recorder, after: mark, timeout: 30) { $0.domain == name && $0.kind == .lifecycle && $0.state == .running }
            XCTAssertNotNil(running, "start \(round): no Running reported; events: \(second.fx.recorder.all.filter { $0.domain == name })")
            let qemu = try second.vmm.info(name).pid
            XCTAssertGreaterThan(qemu, 1, "start \(round): no QEMU pid")
            guard qemu > 1 else { return }
            let t2 = Date()
            XCTAssertEqual(Glibc.kill(qemu, SIGKILL), 0)
            let crash = Self.next(second.fx.recorder, after: mark, timeout: 60) { $0.domain == name && $0.kind == .lifecycle && $0.state == .crashed }
            XCTAssertNotNil(crash, "start \(round): no Crashed after kill -9; events: \(second.fx.recorder.all.filter { $0.domain == name })")
            Self.assertEmulatorDeath(crash)
            if let crash {
                print("measured: start \(round): kill -9 to Crashed \(Int(Date().timeIntervalSince(t2) * 1000)) ms, reported by "
                    + (crash.message.contains("state watch") ? "the state watch (libvirtd sent no event)" : "libvirt's event"))
            }
            for f in ["root.qcow2", "volatile.img"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: "\(run)/\(f)"), "start \(round): \(f) still there when Crashed was reported")
            }
        }
    }

    /// A QEMU killed from outside: libvirt's event says "failed"; the state
    /// watch reads the shut-off reason, "crashed".
    static func assertEmulatorDeath(_ e: HostEvent?, file: StaticString = #filePath, line: UInt = #line) {
        guard let m = e?.message else { return }
        XCTAssertTrue(m == "libvirt stopped: failed" || m.hasPrefix("libvirt stopped: crashed (seen by the state watch"),
                      "unexpected Crashed message: \(m)", file: file, line: line)
    }

    /// The first event after the first `after` recorded that matches, waiting up to `timeout`.
    static func next(_ r: EventRecorder, after: Int, timeout: TimeInterval, _ match: (HostEvent) -> Bool) -> HostEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let e = r.all.dropFirst(after).first(where: match) { return e }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// The whole boot contract with the guest kit's own initrd: this
    /// provider's disks, shares and command line take the kit's init to the
    /// agent (here a stand-in script on the odybin share that reports and
    /// powers off), as PID 1 with the contract's environment.
    func testKitInitReachesTheAgent() throws {
        let t = try tier()
        guard FileManager.default.isExecutableFile(atPath: "/sbin/mke2fs") else { throw XCTSkip("mke2fs missing (e2fsprogs)") }
        let name = "kit\(getpid())"
        var desc = try t.description(name)
        let fm = FileManager.default, tree = t.fx.dir + "/roottree", d = t.dir(name)
        try fm.createDirectory(atPath: tree + "/bin", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "/bin/busybox", toPath: tree + "/bin/busybox")
        try fm.createSymbolicLink(atPath: tree + "/bin/sh", withDestinationPath: "busybox")
        try LibvirtGuest.run("/sbin/mke2fs", ["-q", "-t", "ext4", "-d", tree, d + "/root.img", "32M"])
        try LibvirtGuest.run("/sbin/mke2fs", ["-q", "-t", "ext4", d + "/kit-private.img", "16M"])
        let bin = t.fx.dir + "/kitbin"
        try fm.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try """
        #!/bin/sh
        echo "ODY-AGENT pid=$$ args=$* domain=$ODYSSEY_DOMAIN vchan=$ODYSSEY_VCHAN test=$ODYSSEY_TEST home=$(ls -d /home) rw=$(ls -d /rw/home)"
        /bin/busybox poweroff -f

        """.write(toFile: bin + "/odyssey-agent", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/odyssey-agent")
        desc.volumes = [VolumeDescription(role: .root, form: .image, snapshot: true, path: d + "/root.img"),
                        VolumeDescription(role: .private, form: .image, path: d + "/kit-private.img"),
                        VolumeDescription(role: .volatile, form: .none, path: "", sizeMiB: 32),
                        VolumeDescription(role: .modules, form: .image, readOnly: true, path: LibvirtGuest.pool + "/default/modules.img")]
        desc.shares = [ShareDescription(hostPath: bin, guestPath: "/.odyssey/bin", tag: "odybin")]
        desc.initrd = LibvirtGuest.pool + "/default/initrd.img"
        defined.add(name)
        try DescribedDefine.define(t.vmm, DomainSpec(name: name, memoryMiB: 256, vcpus: 1), desc)
        try t.vmm.start(name)
        let off = t.fx.recorder.wait(timeout: 180) { $0.domain == name && $0.kind == .lifecycle && $0.message.hasPrefix("libvirt stopped") }
        let log = t.console(name)
        XCTAssertTrue(off?.message.hasPrefix("libvirt stopped: shutdown") == true,
                      "the guest did not power off by itself (\(off?.message ?? "no stop event")); console:\n\(log.suffix(3000))")
        XCTAssertFalse(log.contains("odyssey-init: ERROR"), "the kit's init refused the boot:\n\(log.suffix(3000))")
        let expected = "ODY-AGENT pid=1 args=--domain \(name) domain=\(name) vchan=virtio-serial:/dev/vport"
        XCTAssertTrue(log.contains(expected), "no \"\(expected)\" on the console:\n\(log.suffix(3000))")
        XCTAssertTrue(log.contains("test=1 home=/home rw=/rw/home"), "agent env or private layout missing:\n\(log.suffix(3000))")
        XCTAssertFalse(fm.fileExists(atPath: t.runDir(name) + "/root.qcow2"), "the root snapshot layer outlived the stop")
        try t.vmm.undefine(name)
    }

    static func connects(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        guard path.utf8.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { b in for (i, c) in path.utf8.enumerated() { b[i] = c } }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }
}
