// One spelling of the destination for policy and handler (issue 11, finding 11):
// a domain denied a method on vault is denied it through vault's UUID in upper
// or mixed case too, and an unknown destination is refused, never @default.
import Foundation
import XCTest
@testable import Host

final class DestinationSpellingTests: XCTestCase {
    /// method, argument: the reads the red team got through with an upper-case UUID.
    let reads: [(String, String)] = [("admin.vm.property.GetAll", ""), ("admin.vm.feature.List", ""), ("admin.vm.tag.List", ""),
                                     ("admin.vm.volume.Info", "private"), ("admin.vm.CurrentState", "")]

    private func mixedCase(_ s: String) -> String {
        String(s.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
    }

    func testUUIDSpellingsAreDeniedWhereTheNameIsAndAllowedWhereItIs() throws {
        // Deny on vault first, then everything else: @anyvm also matched the
        // @default an unknown spelling fell into.
        let rules = "mgmt vault deny\nmgmt @anyvm allow,target=dom0"
        let h = try AdminHarness(grants: ["admin-local-ro": rules])
        h.create("tpl", klass: "TemplateVM")
        for n in ["vault", "work", "mgmt"] { h.create(n, template: "tpl") }
        for n in ["vault", "work"] { h.ok("admin.vm.feature.Set", "key-\(n)", dest: n, payload: "1") }
        let uuid = { (n: String) in h.ok("admin.vm.property.Get", "uuid", dest: n).split(separator: " ").last.map(String.init)! }
        let (vault, work) = (uuid("vault"), uuid("work"))
        XCTAssertNotEqual(vault.uppercased(), vault)

        for (method, arg) in reads {
            for dest in ["vault", "uuid:\(vault)", "uuid:\(vault.uppercased())", "uuid:\(mixedCase(vault))"] {
                XCTAssertEqual(h.fails(method, arg, dest: dest, as: "mgmt"), .permissionDenied(), "\(method) \(dest)")
            }
            let byName = h.ok(method, arg, dest: "work", as: "mgmt")
            XCTAssertFalse(byName.isEmpty, method)
            for dest in ["uuid:\(work)", "uuid:\(work.uppercased())", "uuid:\(mixedCase(work))"] {
                XCTAssertEqual(h.ok(method, arg, dest: dest, as: "mgmt"), byName, "\(method) \(dest)")
            }
            // dom0 reaches vault by any spelling: the handler and the policy agree on who it is.
            XCTAssertEqual(h.ok(method, arg, dest: "uuid:\(vault.uppercased())"), h.ok(method, arg, dest: "vault"), method)
        }
    }

    func testUnknownDestinationIsDeniedNotDefault() throws {
        let h = try AdminHarness(grants: ["admin-local-ro": "mgmt @anyvm allow,target=dom0"])
        h.create("tpl", klass: "TemplateVM")
        h.create("mgmt", template: "tpl")
        for dest in ["no-such", "uuid:12345678-1234-1234-1234-123456789ABC", "uuid:not-a-uuid", "Dom0", "@default", "@anyvm"] {
            XCTAssertEqual(h.fails("admin.vm.property.GetAll", dest: dest, as: "mgmt"), .permissionDenied(), dest)
        }
        // dom0 is told what is wrong.
        XCTAssertEqual(h.fails("admin.vm.property.GetAll", dest: "uuid:12345678-1234-1234-1234-123456789ABC").type, "QubesVMNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.property.GetAll", dest: "no-such").type, "QubesVMNotFoundError")
    }
}
