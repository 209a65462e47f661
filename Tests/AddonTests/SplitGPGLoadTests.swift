// SplitGPGLoadTests: the library as odysseyd loads it: accepted against its
// manifest (qubes.Gpg domain-side, odyssey.GpgConsent admin-side, the policy
// file), both sides in its capabilities, describe()'s policy text equal to
// the policy file byte for byte, and the view offering the right entries.
import Foundation
import Logging
import PluginABI
import XCTest
@testable import Host

final class SplitGPGLoadTests: XCTestCase {
    func testLibraryAgreesWithManifestAndPolicyFile() throws {
        let src = AddonHarness.packageRoot + "/Plugins/addons/split-gpg"
        let lib = AddonHarness.buildDir + "/libaddon-split-gpg.so"
        guard FileManager.default.fileExists(atPath: lib) else { throw XCTSkip("\(lib) is not built (scripts/build-addons)") }
        let dir = NSTemporaryDirectory() + "split-gpg-load-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/split-gpg.json", toPath: dir + "/split-gpg.json")
        try FileManager.default.copyItem(atPath: lib, toPath: dir + "/libaddon-split-gpg.so")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let reg = PluginLoader(logger: logger, events: EventBus()).loadAll(from: [dir])
        XCTAssertEqual(reg.refused.map(\.line), [])
        let f = try XCTUnwrap(reg.factory(.addon, "split-gpg"))
        XCTAssertEqual(f.capabilities, UInt64(ODY_ADDON_CAP_DOMAIN_SIDE | ODY_ADDON_CAP_ADMIN_SIDE))
        let ops = f.ops.assumingMemoryBound(to: ody_addon_ops.self).pointee
        XCTAssertNotNil(ops.run_service)
        XCTAssertNotNil(ops.run_command)
        XCTAssertNil(ops.on_event)
        let desc = try XCTUnwrap(ops.describe?(0)).pointee
        XCTAssertEqual(desc.service_count, 2)
        let policy = try String(contentsOfFile: src + "/70-split-gpg.policy", encoding: .utf8)
        XCTAssertEqual(desc.policy_text.map { String(cString: $0) }, policy)
        XCTAssertEqual(desc.policy_file_name.map { String(cString: $0) }, "70-split-gpg.policy")
    }

    func testViewProvidesServicesCommandAndConfig() throws {
        let h = try AddonHarness(addons: ["split-gpg"])
        let index = try String(contentsOfFile: h.view + "/index", encoding: .utf8)
        for line in ["service domain qubes.Gpg split-gpg libaddon-split-gpg.so split-gpg",
                     "service admin odyssey.GpgConsent split-gpg libaddon-split-gpg.so split-gpg",
                     "command ody-gpg split-gpg libaddon-split-gpg.so split-gpg"] {
            XCTAssertTrue(index.contains(line + "\n"), "index lacks: \(line)\n\(index)")
        }
        let conf = try String(contentsOfFile: h.view + "/conf/split-gpg", encoding: .utf8)
        for line in ["autoaccept_seconds=300", "gpg=/usr/bin/gpg", "vault=@default"] {
            XCTAssertTrue(conf.split(separator: "\n").contains(Substring(line)), "conf lacks \(line):\n\(conf)")
        }
    }
}
