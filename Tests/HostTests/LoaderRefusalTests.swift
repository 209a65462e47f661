// Every way a plugin can be wrong is refused with one clear line naming the
// file and the reason, and the other plugins load regardless.
import Foundation
import Logging
import XCTest
import PluginABI
@testable import Host

final class LoaderRefusalTests: XCTestCase {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func load(_ dir: String) -> PluginRegistry {
        PluginLoader(logger: logger, events: EventBus()).loadAll(from: [dir])
    }

    private func reason(_ reg: PluginRegistry, _ manifest: String) -> String? {
        reg.refused.first { ($0.path as NSString).lastPathComponent == manifest }?.reason
    }

    func testRefusalMatrixKeepsGoodPluginsLoading() throws {
        let t = TempDir()
        let d = t.sub("plugins")
        // Names sort so that "a-good" loads first: later ones collide with it.
        try Fixture.build("a-good", in: d)
        try Fixture.build("b-no-entry", in: d, defines: ["NO_ENTRY"], id: "noentry", factories: ["noentry"])
        try Fixture.build("c-entry-fails", in: d, defines: ["ENTRY_FAILS"], id: "fails", factories: ["fails"])
        try Fixture.build("d-bad-major", in: d, defines: ["BAD_MAJOR", "ID=\"major\"", "FACTORY=\"major\""], id: "major", factories: ["major"])
        try Fixture.build("e-minor-above", in: d, defines: ["MINOR_ABOVE", "ID=\"minor\"", "FACTORY=\"minor\""], id: "minor", factories: ["minor"])
        try Fixture.build("f-small-info", in: d, defines: ["SMALL_INFO", "ID=\"small\"", "FACTORY=\"small\""], id: "small", factories: ["small"])
        try Fixture.build("g-small-ops", in: d, defines: ["SMALL_OPS", "ID=\"smallops\"", "FACTORY=\"smallops\""], id: "smallops", factories: ["smallops"])
        try Fixture.build("h-id-mismatch", in: d, defines: ["ID=\"other\"", "FACTORY=\"idm\""], id: "idmismatch", factories: ["idm"])
        try Fixture.build("i-factory-mismatch", in: d, defines: ["ID=\"fm\"", "FACTORY=\"actual\""], id: "fm", factories: ["declared"])
        try Fixture.build("j-duplicate-id", in: d, defines: ["FACTORY=\"another\""], id: "fixture", factories: ["another"])
        try Fixture.build("k-duplicate-factory", in: d, defines: ["ID=\"dupfactory\""], id: "dupfactory", factories: ["fixture"])
        try Fixture.build("l-manifest-major", in: d, defines: ["ID=\"mmajor\"", "FACTORY=\"mmajor\""], id: "mmajor", factories: ["mmajor"], manifestMajor: 2)
        _ = t.write("plugins/m-missing-library.json", """
            {"id": "missing", "library": "libnothere.so", "abi": {"major": 1, "minor": 0}, "factories": [{"name": "missing", "kind": "vmm"}]}
            """)
        _ = t.write("plugins/n-bad-json.json", "{ not json")
        _ = t.write("plugins/o-escape.json", """
            {"id": "escape", "library": "../../etc/passwd", "abi": {"major": 1, "minor": 0}, "factories": [{"name": "esc", "kind": "vmm"}]}
            """)
        try Fixture.build("z-good-last", in: d, defines: ["ID=\"last\"", "FACTORY=\"last\""], id: "last", factories: ["last"])

        let reg = load(d)
        XCTAssertEqual(reg.loaded.map(\.id), ["fixture", "last"], "good plugins load around bad ones")

        let expectations: [(String, String)] = [
            ("b-no-entry.json", "has no entry symbol odyssey_plugin_entry"),
            ("c-entry-fails.json", "entry returned -8 (backend error): fixture: cannot initialise (on purpose)"),
            ("d-bad-major.json", "plugin answered ABI major 2; this host speaks ABI 1"),
            ("e-minor-above.json", "plugin negotiated ABI minor \(ODY_ABI_MINOR + 3), above the host's \(ODY_ABI_MINOR)"),
            ("f-small-info.json", "plugin info struct_size 16 is smaller than the"),
            ("g-small-ops.json", "ops struct_size 4 is smaller than the 24 bytes"),
            ("h-id-mismatch.json", "manifest/library mismatch: manifest id \"idmismatch\", library says \"other\""),
            ("i-factory-mismatch.json", "manifest/library mismatch: manifest lists factories [vmm.declared], library provides [vmm.actual]"),
            ("j-duplicate-id.json", "duplicate plugin id \"fixture\""),
            ("k-duplicate-factory.json", "duplicate vmm factory \"fixture\" (already provided by fixture)"),
            ("l-manifest-major.json", "manifest declares ABI major 2; this host speaks ABI 1"),
            ("m-missing-library.json", "libnothere.so is missing"),
            ("n-bad-json.json", "manifest is not valid JSON"),
            ("o-escape.json", "must be a path relative to the manifest, without .."),
        ]
        for (file, text) in expectations {
            guard let r = reason(reg, file) else { XCTFail("\(file) was not refused"); continue }
            XCTAssertTrue(r.contains(text), "\(file): got \"\(r)\", expected it to contain \"\(text)\"")
        }
        XCTAssertEqual(reg.refused.count, expectations.count)
        // One line, naming the file.
        for r in reg.refused { XCTAssertTrue(r.line.hasPrefix(d + "/")); XCTAssertFalse(r.line.contains("\n")) }
    }

    func testNullSlotsAreReportedAsUnsupportedInOnePlace() throws {
        let t = TempDir()
        let d = t.sub("plugins")
        try Fixture.build("fixture", in: d)
        let config = try OdysseyConfig.parse("plugin_dirs = [\"\(d)\"]\n[vmm]\ndefault = \"fixture\"\n", path: t.path + "/o.toml")
        let b = Backends.load(config: config, logger: logger, events: EventBus())
        let vmm = try b.vmm()
        XCTAssertThrowsError(try vmm.start("x")) { e in
            XCTAssertEqual((e as? OdysseyError)?.code, .unsupported)
            XCTAssertEqual((e as? OdysseyError)?.message, "vmm backend 'fixture' does not support start")
        }
        XCTAssertThrowsError(try vmm.list()) { XCTAssertEqual(($0 as? OdysseyError)?.code, .unsupported) }
    }

    func testManifestsAreReadInSortedOrderAcrossDirectories() throws {
        let t = TempDir()
        let d1 = t.sub("one"), d2 = t.sub("two")
        try Fixture.build("b", in: d1, defines: ["ID=\"b\"", "FACTORY=\"b\""], id: "b", factories: ["b"])
        try Fixture.build("a", in: d1, defines: ["ID=\"a\"", "FACTORY=\"a\""], id: "a", factories: ["a"])
        try Fixture.build("0", in: d2, defines: ["ID=\"zero\"", "FACTORY=\"zero\""], id: "zero", factories: ["zero"])
        let names = PluginLoader.manifests(in: [d1, d2]).map { ($0 as NSString).lastPathComponent }
        XCTAssertEqual(names, ["a.json", "b.json", "0.json"])
        XCTAssertEqual(PluginLoader(logger: logger, events: EventBus()).loadAll(from: [d1, d2]).loaded.map(\.id), ["a", "b", "zero"])
    }
}
