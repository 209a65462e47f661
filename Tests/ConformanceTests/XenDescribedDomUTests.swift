// vmm-xen starts a domain from the provider-neutral description (ABI 1.2),
// built the way the host builds it: a template root image behind a per-start
// snapshot, a private image, volatile scratch (swap), the guest kit's modules
// image, the agent's binaries (`odybin`) as a read-only share, the xen
// channel, the kit's kernel and initrd. Runs in dom0 (the Xen tier,
// scripts/xen-tests); skips elsewhere, saying where it runs.
//   - the guest kit's init reaches `odyssey-init: exec /.odyssey/bin/odyssey-agent`
//     on hvc0 with root, private, swap, the modules image and odybin mounted
//     (nothing serves the agent's channel here: IntegrationTests.XenDomainTests
//     runs the whole domain under odysseyd);
//   - the template's image is never written; the per-start files are gone
//     once the domain is killed;
//   - the start bar's pair: vmm-xen start to that line, and libxl creating
//     the same kernel+initrd (no disks) to the init's baseline line.
// The guest kit pool: ODYSSEY_XEN_GUEST_POOL (default the host's
// /var/lib/odyssey/vm-kernels/default, which make test refreshes).
import Foundation
import Host
import PluginABI
import PluginKit
import XCTest

final class XenDescribedDomUTests: XCTestCase {
    var pool = ""

    override func setUpWithError() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier (make test-xen, IntegrationTests.XenTierTests) runs this in dom0")
        }
        let p = ProcessInfo.processInfo.environment["ODYSSEY_XEN_GUEST_POOL"] ?? "/var/lib/odyssey/vm-kernels/default"
        guard FileManager.default.fileExists(atPath: p + "/vmlinux"), FileManager.default.fileExists(atPath: p + "/initrd.img") else {
            XCTFail("the guest kit pool \(p) has no vmlinux + initrd.img: run scripts/guest-kit (make test runs it)")
            return
        }
        pool = p
    }

    /// mke2fs -d DIR IMAGE SIZE (argv, no shell).
    static func makeImage(_ dir: String, _ image: String, mib: Int, label: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/sbin/mke2fs")
        p.arguments = ["-q", "-F", "-t", "ext4", "-L", label, "-E", "root_owner=0:0", "-d", dir, image, "\(mib)M"]
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw XenTestError(description: "mke2fs for \(image) exited \(p.terminationStatus)") }
    }

    static func digest(_ path: String) throws -> Int {
        var h = Hasher()
        h.combine(try Data(contentsOf: URL(fileURLWithPath: path)))
        return h.finalize()
    }

    /// What a Xen PV guest cannot be given is refused at define, saying why (no boot).
    func testWhatXenCannotCarryIsRefusedAtDefine() throws {
        guard !pool.isEmpty else { return }
        let fx = try HostFixture(products: ["vmm-xen"], configBody: """
        [vmm.xen]
        state_dir = "@DIR@/xen-state"
        """)
        let vmm = try fx.backends.vmm("xen")
        var good = DomainDescription()
        good.volumes = [.init(role: .root, form: .image, snapshot: true, path: "/nonexistent/root.img")]
        good.kernel = pool + "/vmlinux"
        good.runDir = fx.dir + "/run"
        good.channel = .init(kind: .xen)
        func refused(_ d: DomainDescription, _ because: String) {
            let name = "xref\(UInt32.random(in: 0..<100_000))"
            do throws(OdysseyError) {
                try DescribedDefine.define(vmm, DomainSpec(name: name, memoryMiB: 128, vcpus: 1), d)
                XCTFail("defined a domain Xen cannot carry (\(because))")
                try? vmm.undefine(name)
            } catch {
                XCTAssertEqual(error.code, .invalid, "\(error)")
                XCTAssertTrue(error.message.contains(because), "unclear refusal: \(error.message)")
            }
        }
        var d = good
        d.volumes = [.init(role: .root, form: .tree, path: "/srv/root")]
        refused(d, "directory tree")
        d = good
        d.shares = [.init(hostPath: "/srv/x", guestPath: "/x", tag: "rw", readOnly: false)]
        refused(d, "is writable")
        d = good
        d.channel = .init(kind: .vsock, cid: 5)
        refused(d, "cannot be wired into a Xen domain")
        d = good
        d.kernelopts = "quiet odyssey.init=/bin/sh"
        refused(d, "odyssey.* options are the provider's own")
        d = good
        d.agentEnv = ["A=b c"]
        refused(d, "a space")
        d = good
        d.kernel = ""
        refused(d, "run scripts/guest-kit")
        // The good one is defined; its start fails on the missing image, and nothing is left running.
        try DescribedDefine.define(vmm, DomainSpec(name: "xgood", memoryMiB: 128, vcpus: 1), good)
        defer { try? vmm.undefine("xgood") }
        XCTAssertThrowsError(try vmm.start("xgood")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/root.img"), "the start's error does not name the missing image: \(e)")
        }
        XCTAssertEqual(try vmm.info("xgood").state, .halted)
    }

    func testDescribedDomainBootsToTheAgentWithItsDisksAndShares() throws {
        guard !pool.isEmpty else { return }
        let fx = try HostFixture(products: ["vmm-xen"], configBody: """
        [vmm]
        default = "xen"
        [vmm.xen]
        state_dir = "@DIR@/xen-state"
        shutdown_timeout = 60
        """)
        let fm = FileManager.default
        let dir = fx.dir
        // The template: a root tree with what the init mounts on, as an image.
        for d in ["tree/root/etc", "tree/root/home", "tree/root/rw", "tree/private/home/user", "tree/odybin", "run"] {
            try fm.createDirectory(atPath: "\(dir)/\(d)", withIntermediateDirectories: true)
        }
        try "xen-template\n".write(toFile: "\(dir)/tree/root/etc/hostname", atomically: true, encoding: .utf8)
        try Self.makeImage("\(dir)/tree/root", "\(dir)/root.img", mib: 64, label: "root")
        try Self.makeImage("\(dir)/tree/private", "\(dir)/private.img", mib: 32, label: "private")
        let agent = Build.dir + "/odyssey-agent"
        XCTAssertTrue(fm.isExecutableFile(atPath: agent), "\(agent) is not built")
        try fm.copyItem(atPath: agent, toPath: "\(dir)/tree/odybin/odyssey-agent")
        let rootBefore = try Self.digest("\(dir)/root.img")

        var d = DomainDescription()
        d.volumes = [
            .init(role: .root, form: .image, snapshot: true, path: "\(dir)/root.img"),
            .init(role: .private, form: .image, path: "\(dir)/private.img"),
            .init(role: .volatile, form: .none, path: "", sizeMiB: 64),
            .init(role: .modules, form: .image, readOnly: true, path: pool + "/modules.img"),
        ]
        d.shares = [.init(hostPath: "\(dir)/tree/odybin", guestPath: "/.odyssey/bin", tag: "odybin")]
        d.channel = .init(kind: .xen)
        d.kernel = pool + "/vmlinux"
        d.initrd = pool + "/initrd.img"
        d.kernelopts = "odyssey.trace=1"
        d.agentPath = "/.odyssey/bin/odyssey-agent"
        d.agentEnv = ["ODYSSEY_DEFAULT_USER=user"]
        d.runDir = "\(dir)/run"
        d.label = "red"

        let vmm = try fx.backends.vmm("xen")
        let name = "xdesc\(UInt32.random(in: 0..<100_000))"
        try DescribedDefine.define(vmm, DomainSpec(name: name, memoryMiB: 192, maxmemMiB: 192, vcpus: 1), d)
        defer { try? vmm.kill(name); try? vmm.undefine(name) }

        let t0 = Date()
        try vmm.start(name)
        let created = Date().timeIntervalSince(t0)
        try XenConformanceTests.waitForConsole(name, "odyssey-init: exec /.odyssey/bin/odyssey-agent", seconds: 240)
        let ready = Date().timeIntervalSince(t0)
        let consoleDir = ProcessInfo.processInfo.environment["ODYSSEY_XEN_CONSOLE_DIR"] ?? "/var/log/xen/console"
        let console = (try? String(contentsOfFile: "\(consoleDir)/guest-\(name).log", encoding: .utf8)) ?? ""
        print("XenDescribedDomUTests: the init's lines:\n" + console.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("odyssey-init") }.joined(separator: "\n"))
        XCTAssertTrue(console.contains("odyssey-init: t=") && console.contains(" swap on"), "no trace of the boot's steps")
        XCTAssertFalse(console.contains("not used as swap"), "volatile did not become swap")
        XCTAssertFalse(console.contains("no private volume"), "private was not mounted")
        XCTAssertFalse(console.contains("odyssey-init: ERROR"), "the init failed")
        XCTAssertTrue(console.contains("modules image mounted") && console.contains("shares mounted"))
        // The per-start layer exists while it runs; the template is untouched.
        XCTAssertTrue(fm.fileExists(atPath: "\(dir)/run/xen-xvda.img"), "no per-start root layer in the run dir")
        let images = try fm.contentsOfDirectory(atPath: "\(dir)/xen-state/share-images").filter { $0.hasSuffix(".img") }
        XCTAssertEqual(images.count, 1, "the odybin image: \(images)")

        try vmm.kill(name)
        let gone = fx.recorder.wait(timeout: 60) { $0.kind == .lifecycle && $0.domain == name && $0.state == .halted && $0.message.contains("destroyed") }
        XCTAssertNotNil(gone, "no Halted event after kill")
        XCTAssertEqual(try Self.digest("\(dir)/root.img"), rootBefore, "the template's root image was written")
        let deadline = Date().addingTimeInterval(10)
        while fm.fileExists(atPath: "\(dir)/run/xen-xvda.img") && Date() < deadline { usleep(100_000) }
        XCTAssertFalse(fm.fileExists(atPath: "\(dir)/run/xen-xvda.img"), "the root layer outlived the domain")
        XCTAssertFalse(fm.fileExists(atPath: "\(dir)/run/xen-xvdc.img"), "the volatile disk outlived the domain")

        // The bar's baseline: libxl creates the same kernel+initrd (no disks,
        // no layout) and the init prints its baseline line on hvc0.
        let base = name + "-base"
        try vmm.define(DomainSpec(name: base, memoryMiB: 192, maxmemMiB: 192, vcpus: 1,
                                  params: [("kernel", d.kernel), ("ramdisk", d.initrd), ("type", "pv"),
                                           ("cmdline", "odyssey.baseline=console odyssey.vchan=xen console=hvc0")]))
        defer { try? vmm.kill(base); try? vmm.undefine(base) }
        let b0 = Date()
        try vmm.start(base)
        let baseCreated = Date().timeIntervalSince(b0)
        try XenConformanceTests.waitForConsole(base, "odyssey-baseline up", seconds: 240)
        let baseReady = Date().timeIntervalSince(b0)
        print(String(format: "XenDescribedDomUTests: vmm-xen start (libxl create + disks) %.2f s, start to the init's exec line %.2f s; "
                     + "baseline: libxl create of the same kernel+initrd %.2f s, to its console line %.2f s (TCG, PV)",
                     created, ready, baseCreated, baseReady))
    }
}
