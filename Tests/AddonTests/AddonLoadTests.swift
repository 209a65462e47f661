// Every first-party add-on as odysseyd loads it: the loader accepts the
// library against its manifest (same services, sides and policy file, or it
// refuses), the capabilities and ops slots are what the add-on claims,
// describe()'s policy text is the shipped policy file byte for byte, and the
// view lists every service on its side and every command.
import Foundation
import Logging
import PluginABI
import XCTest
@testable import Host

final class AddonLoadTests: XCTestCase {
    private struct Expected {
        var id: String
        var domainServices: [String]
        var adminServices: [String] = []
        var commands: [String]
    }

    private let addons = [
        Expected(id: "filecopy", domainServices: ["qubes.Filecopy"], commands: ["ody-copy", "ody-move"]),
        Expected(id: "open-in-vm", domainServices: ["qubes.OpenInVM", "qubes.OpenURL"],
                 commands: ["ody-open-in-vm", "ody-open-in-dvm"]),
        Expected(id: "split-gpg", domainServices: ["qubes.Gpg"], adminServices: ["odyssey.GpgConsent"], commands: ["ody-gpg"]),
        Expected(id: "pdf-converter", domainServices: ["qubes.PdfConvert"], commands: ["ody-convert-pdf"]),
    ]

    func testEachLibraryAgreesWithItsManifestAndPolicyFile() throws {
        for a in addons {
            let src = AddonHarness.packageRoot + "/Plugins/addons/" + a.id
            let lib = AddonHarness.buildDir + "/libaddon-\(a.id).so"
            guard FileManager.default.fileExists(atPath: lib) else { throw XCTSkip("\(lib) is not built (scripts/build-addons)") }
            let dir = NSTemporaryDirectory() + "\(a.id)-load-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: "\(src)/\(a.id).json", toPath: "\(dir)/\(a.id).json")
            try FileManager.default.copyItem(atPath: lib, toPath: "\(dir)/libaddon-\(a.id).so")
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            let reg = PluginLoader(logger: logger, events: EventBus()).loadAll(from: [dir])
            XCTAssertEqual(reg.refused.map(\.line), [], a.id)
            let f = try XCTUnwrap(reg.factory(.addon, a.id), a.id)
            let sides = (a.adminServices.isEmpty ? 0 : UInt64(ODY_ADDON_CAP_ADMIN_SIDE)) | UInt64(ODY_ADDON_CAP_DOMAIN_SIDE)
            XCTAssertEqual(f.capabilities, sides, a.id)
            let ops = f.ops.assumingMemoryBound(to: ody_addon_ops.self).pointee
            XCTAssertNotNil(ops.run_service, a.id)
            XCTAssertNotNil(ops.run_command, a.id)
            XCTAssertNil(ops.on_event, "\(a.id) hooks no events")
            let desc = try XCTUnwrap(ops.describe?(0), a.id).pointee
            XCTAssertEqual(Int(desc.service_count), a.domainServices.count + a.adminServices.count, a.id)
            let file = "70-\(a.id).policy"
            let policy = try String(contentsOfFile: "\(src)/\(file)", encoding: .utf8)
            XCTAssertEqual(desc.policy_text.map { String(cString: $0) }, policy, a.id)
            XCTAssertEqual(desc.policy_file_name.map { String(cString: $0) }, file, a.id)
        }
    }

    func testTheViewListsEveryServiceOnItsSideAndEveryCommand() throws {
        let h = try AddonHarness(addons: addons.map(\.id))
        let index = Set(try String(contentsOfFile: h.view + "/index", encoding: .utf8).split(separator: "\n").map(String.init))
        for a in addons {
            let tail = "\(a.id) libaddon-\(a.id).so \(a.id)"
            for s in a.domainServices { XCTAssertTrue(index.contains("service domain \(s) \(tail)"), "\(s)\n\(index)") }
            for s in a.adminServices { XCTAssertTrue(index.contains("service admin \(s) \(tail)"), "\(s)\n\(index)") }
            for c in a.commands { XCTAssertTrue(index.contains("command \(c) \(tail)"), "\(c)\n\(index)") }
            for s in a.domainServices { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(h.view)/rpc/\(s)"), s) }
            for s in a.adminServices { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(h.view)/admin-rpc/\(s)"), s) }
            for c in a.commands { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(h.view)/bin/\(c)"), c) }
        }
        // An add-on's config reaches its conf file, defaults included.
        let conf = try String(contentsOfFile: h.view + "/conf/split-gpg", encoding: .utf8).split(separator: "\n")
        for line in ["autoaccept_seconds=300", "gpg=/usr/bin/gpg", "vault=@default"] {
            XCTAssertTrue(conf.contains(Substring(line)), "conf lacks \(line): \(conf)")
        }
    }
}
