// OpenInVMLoadTests: the library as odysseyd loads it: the loader accepts it
// against its manifest (services, sides, policy file), it provides both
// services and both commands, and describe()'s policy text is the policy
// file byte for byte.
import Foundation
import Logging
import PluginABI
import XCTest
@testable import Host

final class OpenInVMLoadTests: XCTestCase {
    func testLibraryAgreesWithManifestAndPolicyFile() throws {
        let src = AddonHarness.packageRoot + "/Plugins/addons/open-in-vm"
        let lib = AddonHarness.buildDir + "/libaddon-open-in-vm.so"
        guard FileManager.default.fileExists(atPath: lib) else { throw XCTSkip("\(lib) is not built (scripts/build-addons)") }
        let dir = NSTemporaryDirectory() + "open-in-vm-load-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/open-in-vm.json", toPath: dir + "/open-in-vm.json")
        try FileManager.default.copyItem(atPath: lib, toPath: dir + "/libaddon-open-in-vm.so")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let reg = PluginLoader(logger: logger, events: EventBus()).loadAll(from: [dir])
        XCTAssertEqual(reg.refused.map(\.line), [])
        let f = try XCTUnwrap(reg.factory(.addon, "open-in-vm"))
        XCTAssertEqual(f.capabilities, UInt64(ODY_ADDON_CAP_DOMAIN_SIDE))
        let ops = f.ops.assumingMemoryBound(to: ody_addon_ops.self).pointee
        XCTAssertNotNil(ops.run_service)
        XCTAssertNotNil(ops.run_command)
        XCTAssertNil(ops.on_event)
        let desc = try XCTUnwrap(ops.describe?(0)).pointee
        XCTAssertEqual(desc.service_count, 2)
        let policy = try String(contentsOfFile: src + "/70-open-in-vm.policy", encoding: .utf8)
        XCTAssertEqual(desc.policy_text.map { String(cString: $0) }, policy)
        XCTAssertEqual(desc.policy_file_name.map { String(cString: $0) }, "70-open-in-vm.policy")
    }

    func testViewProvidesServicesAndCommands() throws {
        let h = try AddonHarness(addons: ["open-in-vm"])
        let index = try String(contentsOfFile: h.view + "/index", encoding: .utf8)
        for line in ["service domain qubes.OpenInVM open-in-vm libaddon-open-in-vm.so open-in-vm",
                     "service domain qubes.OpenURL open-in-vm libaddon-open-in-vm.so open-in-vm",
                     "command ody-open-in-vm open-in-vm libaddon-open-in-vm.so open-in-vm",
                     "command ody-open-in-dvm open-in-vm libaddon-open-in-vm.so open-in-vm"] {
            XCTAssertTrue(index.contains(line + "\n"), "index lacks: \(line)\n\(index)")
        }
    }
}
