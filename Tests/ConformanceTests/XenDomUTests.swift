// vmm-xen against a real domU, beyond the generic conformance body: what
// only Xen can show. Runs in dom0 (the Xen tier, scripts/xen-tests); on a
// host without Xen it skips, saying where it runs. One domU boot in all:
// TCG makes every boot cost seconds.
//   - a PV domU boots the kit's kernel and initrd and says so on its console;
//     libxl's create time and the time to that line are printed
//   - info reports what was asked (memory, vCPUs, uuid) from the hypervisor
//   - a domU destroyed behind the plugin's back (`xl destroy`) is reported
//     Halted on the EventBus and by info, and is gone from `xl list`
//   - PVH: started, or refused with a clear error and nothing left running
import Foundation
import Host
import PluginABI
import XCTest

final class XenDomUTests: XCTestCase {
    var kernel = "", ramdisk = ""

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier (make test-xen, IntegrationTests.XenTierTests) runs this in dom0")
        }
        guard let k = env["ODYSSEY_XEN_KERNEL"], let r = env["ODYSSEY_XEN_RAMDISK"] else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but not ODYSSEY_XEN_KERNEL/RAMDISK"); return }
            throw XCTSkip("set ODYSSEY_XEN_KERNEL and ODYSSEY_XEN_RAMDISK (scripts/xen-kit's domu/) to run this")
        }
        kernel = k; ramdisk = r
    }

    func spec(_ name: String, type: String = "pv", uuid: String = "") -> DomainSpec {
        DomainSpec(name: name, uuid: uuid, memoryMiB: 112, maxmemMiB: 128, vcpus: 1,
                   params: [("kernel", kernel), ("ramdisk", ramdisk), ("cmdline", "console=hvc0 quiet"), ("type", type)])
    }

    func testRealDomUBootsReportsItselfAndIsSeenDestroyedBehindOurBack() throws {
        guard !kernel.isEmpty else { return }
        let fx = try HostFixture(products: ["vmm-xen"], configBody: """
        [vmm]
        default = "xen"
        [vmm.xen]
        state_dir = "@DIR@/xen-state"
        shutdown_timeout = 60
        """)
        let vmm = try fx.backends.vmm("xen")
        let name = "xdomu\(UInt32.random(in: 0..<100_000))"
        let uuid = "6f1c2a3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b"
        try vmm.define(spec(name, uuid: uuid))
        defer { try? vmm.kill(name); try? vmm.undefine(name) }

        let t0 = Date()
        try vmm.start(name)
        let created = Date().timeIntervalSince(t0)
        try XenConformanceTests.waitForConsole(name, "ODYSSEY-DOMU-READY", seconds: 120)
        let ready = Date().timeIntervalSince(t0)
        print(String(format: "XenDomUTests: libxl create (start returned) %.2f s; start to the domU's console line %.2f s (TCG, PV)",
                     created, ready))

        let info = try vmm.info(name)
        XCTAssertEqual(info.state, .running)
        XCTAssertEqual(info.uuid, uuid, "the uuid Xen reports is not the defined one")
        XCTAssertEqual(info.vcpus, 1)
        XCTAssertEqual(info.maxmemKiB, 128 * 1024, "max memory as Xen reports it")
        // The guest may have given a little back (ballooning) but never more than it was given.
        XCTAssertLessThanOrEqual(info.memoryKiB, 128 * 1024)
        XCTAssertGreaterThan(info.memoryKiB, 64 * 1024, "current memory as Xen reports it")

        // Destroyed behind the plugin's back: the death watch reports it.
        try Self.xl(["destroy", name])
        XCTAssertNotNil(fx.recorder.lifecycle("vmm.xen", name, .halted, timeout: 30),
                        "no Halted lifecycle event after xl destroy; events: \(fx.recorder.all.filter { $0.domain == name })")
        XCTAssertEqual(try vmm.info(name).state, .halted)
        XCTAssertFalse(try Self.xl(["list"]).contains(name), "xl list still shows \(name)")

        // PVH needs hardware virtualization in the (here emulated) CPU.
        let pvh = name + "-pvh"
        try vmm.define(spec(pvh, type: "pvh"))
        defer { try? vmm.kill(pvh); try? vmm.undefine(pvh) }
        do throws(OdysseyError) {
            try vmm.start(pvh)
            print("XenDomUTests: a PVH domU starts here")
            XCTAssertEqual(try vmm.info(pvh).state, .running)
            try vmm.kill(pvh)
        } catch {
            print("XenDomUTests: PVH refused here: \(error.message)")
            XCTAssertEqual(error.code, .unsupported, "PVH refusal: \(error)")
            XCTAssertTrue(error.message.contains("type pvh needs hardware virtualization"), "unclear PVH refusal: \(error)")
            XCTAssertEqual(try vmm.info(pvh).state, .halted, "a failed PVH start left a domain running")
            XCTAssertFalse(try Self.xl(["list"]).contains(pvh), "a failed PVH start left a Xen domain behind")
        }
    }

    /// Runs xl (argv, no shell); its output, or an error with it.
    @discardableResult
    static func xl(_ arguments: [String]) throws -> String {
        let p = Process(), pipe = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/lib/xen-4.17/bin/xl")
        p.arguments = arguments
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XenTestError(description: "xl \(arguments.joined(separator: " ")) exited \(p.terminationStatus): \(out)") }
        return out
    }
}
