import XCTest
@testable import Host

final class AdminWireTests: XCTestCase {
    func testRoundTrip() throws {
        let r = AdminRequest(method: "admin.vm.property.Get", argument: "label", source: "dom0", destType: "name", dest: "work",
                             payload: Array("x\0y".utf8))
        XCTAssertEqual(try AdminRequest.decode(r.encoded()), r)
    }

    func testKeywordAdminvmMeansDom0() throws {
        let r = try AdminRequest.decode(Array("admin.vm.List dom0 keyword adminvm\0".utf8))
        XCTAssertEqual(r.destType, "name")
        XCTAssertEqual(r.dest, "dom0")
    }

    func testFramingErrors() {
        let cases: [([UInt8], String)] = [
            (Array("admin.vm.List dom0 name dom0".utf8), "not NUL-terminated"),
            (Array("admin.vm.List dom0 dom0\0".utf8), "needs 4 fields"),
            ([0xff, 0xfe, 0x20, 0x00], "not UTF-8"),
            (Array("admin vm dom0 name dom0\0".utf8), "needs 4 fields"),
            (Array("admin/vm dom0 name dom0\0".utf8), "invalid method name"),
            ([UInt8](repeating: 0x61, count: AdminRequest.maxSize + 1), "larger than"),
        ]
        for (bytes, text) in cases {
            XCTAssertThrowsError(try AdminRequest.decode(bytes)) { e in
                let a = e as? AdminError
                XCTAssertEqual(a?.type, "ProtocolError")
                XCTAssertTrue(a?.message.contains(text) ?? false, "\(String(describing: a)) should contain \(text)")
            }
        }
    }

    func testReplies() throws {
        XCTAssertEqual(AdminResponse.success(Array("hi".utf8)).encoded(), Array("0\0hi".utf8))
        let err = AdminResponse.failure(AdminError("QubesVMNotFoundError", "no such domain"))
        XCTAssertEqual(err.encoded(), Array("2\0QubesVMNotFoundError\0\0no such domain\0".utf8))
        XCTAssertEqual(try AdminResponse.decode(err.encoded()), err)
    }
}
