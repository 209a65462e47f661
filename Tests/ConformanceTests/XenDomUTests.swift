// vmm-xen against a real domU, beyond the generic conformance body: what
// only Xen can show. Runs in dom0 (the Xen tier, scripts/xen-tests); on a
// host without Xen it skips, saying where it runs. One domU boot in all:
// TCG makes every boot cost seconds.
//   - a PV domU boots the kit's kernel and initrd and says so on its console;
//     libxl's create time and the time to that line are printed
//   - info reports what was asked (memory, vCPUs, uuid) from the hypervisor
//   - a new instance (a restarted odysseyd) reads the definitions back and
//     adopts the running domU
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
                   params: [("kernel", kernel), ("ramdisk", ramdisk), ("type", type),
                            // '=', spaces, '%' and UTF-8 in a stored value: the definitions file must keep them.
                            ("cmdline", "console=hvc0 quiet odyssey.test=%41\u{e9}\tx")])
    }

    func testRealDomUBootsIsAdoptedAfterReopenAndIsSeenDestroyedBehindOurBack() throws {
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
        defer { if let v = try? fx.backends.vmm("xen") { try? v.kill(name); try? v.undefine(name) } }

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

        // A new instance (odysseyd restarted) reads the definitions back from
        // state_dir and adopts the running domU: same uuid, and its death watch
        // is armed again.
        fx.backends.closeAll()
        let again = try fx.backends.vmm("xen")
        XCTAssertTrue(try again.list().contains(name), "the reopened instance lost the definition")
        let adopted = try again.info(name)
        XCTAssertEqual(adopted.state, .running, "the reopened instance does not see the running domU")
        XCTAssertEqual(adopted.uuid, uuid)

        // Destroyed behind the plugin's back: the (re-armed) death watch reports it.
        try Self.xl(["destroy", name])
        let died = fx.recorder.wait(timeout: 30) {
            $0.kind == .lifecycle && $0.source == "vmm.xen" && $0.domain == name && $0.state == .halted && $0.message.contains("destroyed")
        }
        XCTAssertNotNil(died, "no Halted lifecycle event after xl destroy; events: \(fx.recorder.all.filter { $0.domain == name })")
        XCTAssertEqual(try again.info(name).state, .halted)
        XCTAssertFalse(try Self.xl(["list"]).contains(name), "xl list still shows \(name)")

        // PVH needs hardware virtualization in the (here emulated) CPU.
        let pvh = name + "-pvh"
        try again.define(spec(pvh, type: "pvh"))
        defer { try? again.kill(pvh); try? again.undefine(pvh) }
        do throws(OdysseyError) {
            try again.start(pvh)
            print("XenDomUTests: a PVH domU starts here")
            XCTAssertEqual(try again.info(pvh).state, .running)
            try again.kill(pvh)
        } catch {
            print("XenDomUTests: PVH refused here: \(error.message)")
            XCTAssertEqual(error.code, .unsupported, "PVH refusal: \(error)")
            XCTAssertTrue(error.message.contains("type pvh needs hardware virtualization"), "unclear PVH refusal: \(error)")
            XCTAssertEqual(try again.info(pvh).state, .halted, "a failed PVH start left a domain running")
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
