import FoundationEssentials
import XCTest
@testable import Host

final class ManifestTests: XCTestCase {
    func decode(_ text: String) throws -> PluginManifest { try PluginManifest.decode(Data(text.utf8)) }

    func expect(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(text), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(message), "got \(e), expected \(message)", file: file, line: line)
        }
    }

    func testAFullManifest() throws {
        let m = try decode("""
            {"id": "vmm-x", "library": "libvmm-x.so", "abi": {"major": 1, "minor": 0}, "version": "1.2", "license": "MIT",
             "description": "caf\\u00e9 \\"quoted\\"", "factories": [{"name": "x", "kind": "vmm",
             "config": {"dir": {"type": "path", "default": "/var/x", "help": "where"}}}, {"name": "y", "kind": "vchan", "config": null}]}
            """)
        XCTAssertEqual(m.id, "vmm-x")
        XCTAssertEqual(m.abi, PluginManifest.ABI(major: 1, minor: 0))
        XCTAssertEqual(m.description, "café \"quoted\"")
        XCTAssertEqual(m.factories.map(\.kind), [.vmm, .vchan])
        XCTAssertEqual(m.factories[0].config?["dir"], PluginManifest.ConfigKey(type: "path", default: "/var/x", help: "where"))
        XCTAssertNil(m.factories[1].config)
    }

    func testErrorsNameTheField() {
        expect("{", "manifest is not valid JSON")
        expect("[]", "manifest is not a JSON object")
        expect("{\"id\": \"a\"} x", "unexpected text after the JSON value")
        expect("{\"library\": \"l.so\", \"abi\": {\"major\": 1, \"minor\": 0}, \"factories\": []}", "manifest is missing \"id\"")
        expect("{\"id\": 3, \"library\": \"l.so\", \"abi\": {\"major\": 1, \"minor\": 0}, \"factories\": []}", "field \"id\" has the wrong type")
        expect("{\"id\": \"a\", \"library\": \"l.so\", \"abi\": {\"major\": -1, \"minor\": 0}, \"factories\": []}", "field \"abi.major\" has the wrong type")
        expect("{\"id\": \"a\", \"library\": \"l.so\", \"abi\": {\"major\": 1, \"minor\": 0}, \"factories\": [{\"name\": \"x\", \"kind\": \"disk\"}]}",
               "factories[0].kind\" has the wrong type (unknown kind \"disk\")")
        expect("{\"id\": \"a\", \"library\": \"l.so\", \"abi\": {\"major\": 1, \"minor\": 0}, \"factories\": [{\"name\": \"x\", \"kind\": \"vmm\", \"config\": {\"k\": {\"type\": 1}}}]}",
               "factories[0].config.k.type\" has the wrong type")
        expect("{\"id\": \"a\", \"library\": \"l.so\", \"abi\": {\"major\": 1, \"minor\": 0}, \"factories\": []}", "manifest lists no factories")
    }

    func testRandomBytesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]:,\"\\ u0123abcdeftrunl-.".utf8)
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            _ = try? PluginManifest.decode(Data(bytes))
        }
    }
}
