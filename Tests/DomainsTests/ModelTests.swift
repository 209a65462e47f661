import XCTest
@testable import Domains

final class ModelTests: XCTestCase {
    func testNameRules() {
        for good in ["work", "a", "sys-net", "my_vm.2", "A1", String(repeating: "x", count: 31), "dm", "x-dmz"] {
            XCTAssertNoThrow(try DomainName.validate(good), good)
        }
        let bad: [(String, String)] = [
            ("", "empty"), (String(repeating: "x", count: 32), "longer than 31"), ("1work", "start with a letter"),
            ("-work", "start with a letter"), ("wo rk", "may contain only"), ("wörk", "may contain only"),
            ("work/x", "may contain only"), ("none", "reserved"), ("default", "reserved"), ("Domain-0", "reserved"),
            ("work-dm", "must not end in '-dm'"),
        ]
        for (name, msg) in bad {
            assertDomainError("QubesValueError", msg) { try DomainName.validate(name) }
        }
    }

    func testTagAndFeatureRules() {
        XCTAssertNoThrow(try TagRules.validate("managed_by-IT9"))
        for t in ["", "a b", "a.b", "a:b", "é"] { assertDomainError("QubesValueError") { try TagRules.validate(t) } }
        XCTAssertNoThrow(try FeatureRules.validate(key: "service.cups", value: "1"))
        assertDomainError("QubesValueError") { try FeatureRules.validate(key: "a b") }
        assertDomainError("QubesValueError", "NUL") { try FeatureRules.validate(key: "k", value: "a\u{0}b") }
    }

    func testBuiltinLabels() {
        XCTAssertEqual(Label.builtin.map(\.name), ["red", "orange", "yellow", "green", "gray", "blue", "purple", "black"])
        XCTAssertEqual(Label.builtin.map(\.index), Array(1...8))
        XCTAssertEqual(Label.builtin[5].color, "0x3465a4")
        XCTAssertTrue(Label.builtin[0].rgb == (0xcc, 0, 0))
    }

    func testUUID() {
        let u = DomainUUID.random()
        XCTAssertNotNil(DomainUUID(u.text))
        XCTAssertEqual(Array(u.text.utf8)[14], UInt8(ascii: "4"))
        XCTAssertNil(DomainUUID("not-a-uuid"))
        XCTAssertNotEqual(DomainUUID.random(), DomainUUID.random())
    }

    func testErrorsCarryQubesTypes() {
        XCTAssertEqual(DomainError.vmNotFound("x").qubesType, "QubesVMNotFoundError")
        XCTAssertEqual(DomainError.noSuchProperty(domain: "w", property: "p").qubesType, "QubesNoSuchPropertyError")
        XCTAssertEqual(DomainError.vmInUse(domain: "t", reason: "r").qubesType, "QubesVMInUseError")
        XCTAssertEqual(DomainError.labelNotFound("x").qubesType, "QubesLabelNotFoundError")
        XCTAssertEqual(DomainError.vmNotFound("x").message, "No such domain: 'x'")
    }
}
