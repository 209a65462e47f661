import XCTest
@testable import Host

final class TOMLReaderTests: XCTestCase {
    func testValuesTablesAndLines() throws {
        let t = try TOMLReader.parse("""
            # comment
            a = "x\\ty\\u00e9"   # trailing comment
            b = 'C:\\raw'
            n = -1_000
            h = 0x1F
            f = 2.5
            yes = true
            list = [1, 2,
                    3,]   # multi-line with trailing comma
            "quoted key" = 1
            dotted.key = "v"
            inline = { k = 1, s = "t" }

            [vmm]
            default = "native"
            [vmm.libvirt]
            uri = "test:///default"
            """)
        XCTAssertEqual(t["a"], .string("x\ty\u{e9}"))
        XCTAssertEqual(t["b"], .string("C:\\raw"))
        XCTAssertEqual(t["n"], .integer(-1000))
        XCTAssertEqual(t["h"], .integer(31))
        XCTAssertEqual(t["f"], .float(2.5))
        XCTAssertEqual(t["yes"], .boolean(true))
        XCTAssertEqual(t["list"], .array([.integer(1), .integer(2), .integer(3)]))
        XCTAssertEqual(t["quoted key"], .integer(1))
        guard case .table(let dotted) = t["dotted"] else { return XCTFail("dotted key makes a table") }
        XCTAssertEqual(dotted["key"], .string("v"))
        guard case .table(let vmm) = t["vmm"], case .table(let lv) = vmm["libvirt"] else { return XCTFail("nested tables") }
        XCTAssertEqual(vmm["default"], .string("native"))
        XCTAssertEqual(lv["uri"], .string("test:///default"))
        XCTAssertEqual(t.line(of: "a"), 2)
        XCTAssertEqual(lv.line(of: "uri"), 17)
        XCTAssertEqual(t.keys.first, "a", "key order is kept")
    }

    func testErrorsCarryTheLine() {
        let cases: [(String, Int, String)] = [
            ("a = 1\na = 2", 2, "key 'a' set twice"),
            ("[t]\n[t]", 2, "table [t] defined twice"),
            ("a = \"unterminated", 1, "unterminated string"),
            ("a = bare", 1, "invalid value 'bare' (strings need quotes)"),
            ("a = 1 2", 1, "unexpected text after value"),
            ("a = \"\"\"x\"\"\"", 1, "multi-line strings are not supported"),
            ("[[arr]]", 1, "arrays of tables"),
            ("a = 1979-05-27", 1, "dates and times are not supported"),
            ("a = [1, 2", 1, "unterminated array"),
            ("a = \"\\q\"", 1, "invalid escape"),
            ("x = 1\n\n= 3", 3, "expected a key"),
            ("a = 1\n[a]", 2, "key 'a' is already a integer, not a table"),
            ("a =", 1, "missing value"),
        ]
        for (text, line, message) in cases {
            XCTAssertThrowsError(try TOMLReader.parse(text), text) { e in
                guard let t = e as? TOMLError else { return XCTFail("\(e)") }
                XCTAssertEqual(t.line, line, text)
                XCTAssertTrue(t.message.contains(message), "\(text): got \(t.message)")
            }
        }
    }

    func testRandomInputNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab=\"'[]{},.#\n \\u0x1_-+tre".utf8)
        for _ in 0..<3000 {
            let n = Int.random(in: 0..<40, using: &rng)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            _ = try? TOMLReader.parse(String(decoding: bytes, as: UTF8.self))
        }
    }
}
