// FilecopyLoadTests: the library as odysseyd loads it: the loader accepts it
// against its manifest, it provides qubes.Filecopy (domain side) and both
// commands, and describe()'s policy text is the policy file byte for byte.
import Foundation
import Logging
import PluginABI
import XCTest
@testable import Host

final class FilecopyLoadTests: XCTestCase {
    func testLibraryAgreesWithManifestAndPolicyFile() throws {
        let src = AddonHarness.packageRoot + "/Plugins/addons/filecopy"
        let lib = AddonHarness.buildDir + "/libaddon-filecopy.so"
        guard FileManager.default.fileExists(atPath: lib) else { throw XCTSkip("\(lib) is not built (scripts/build-addons)") }
        let dir = NSTemporaryDirectory() + "filecopy-load-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/filecopy.json", toPath: dir + "/filecopy.json")
        try FileManager.default.copyItem(atPath: lib, toPath: dir + "/libaddon-filecopy.so")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let reg = PluginLoader(logger: logger, events: EventBus()).loadAll(from: [dir])
        XCTAssertEqual(reg.refused.map(\.line), [])
        let f = try XCTUnwrap(reg.factory(.addon, "filecopy"))
        XCTAssertEqual(f.capabilities, UInt64(ODY_ADDON_CAP_DOMAIN_SIDE))
        let ops = f.ops.assumingMemoryBound(to: ody_addon_ops.self).pointee
        XCTAssertNotNil(ops.run_service)
        XCTAssertNotNil(ops.run_command)
        XCTAssertNil(ops.on_event)
        let desc = try XCTUnwrap(ops.describe?(0)).pointee
        XCTAssertEqual(desc.service_count, 1)
        let service = try XCTUnwrap(desc.services?[0]).pointee
        XCTAssertEqual(String(cString: service.name), "qubes.Filecopy")
        XCTAssertEqual(UInt64(service.flags), UInt64(ODY_ADDON_CAP_DOMAIN_SIDE))
        let policy = try String(contentsOfFile: src + "/70-filecopy.policy", encoding: .utf8)
        XCTAssertEqual(desc.policy_text.map { String(cString: $0) }, policy)
        XCTAssertEqual(desc.policy_file_name.map { String(cString: $0) }, "70-filecopy.policy")
    }

    func testViewProvidesTheServiceAndBothCommands() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let index = try String(contentsOfFile: h.view + "/index", encoding: .utf8)
        for line in ["service domain qubes.Filecopy filecopy libaddon-filecopy.so filecopy",
                     "command ody-copy filecopy libaddon-filecopy.so filecopy",
                     "command ody-move filecopy libaddon-filecopy.so filecopy"] {
            XCTAssertTrue(index.contains(line + "\n"), "index lacks: \(line)\n\(index)")
        }
    }
}
