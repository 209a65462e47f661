// Issue 11, findings 10 and 11, attacked from a real domain with `ody-call`:
// an upper-case UUID does not get past a deny rule, and a broad grant does
// not give raw backend parameters or the answering of asks.
import Domains
import Foundation
import XCTest
@testable import Host

final class DelegatedAuthorityTests: XCTestCase {
    func testUUIDSpellingAndDom0OnlyMethodsFromADomain() throws {
        let h = try Host("odyssey-dauth")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        for n in ["mgmt", "work", "vault"] { try h.create(n) }
        let grants = """
        admin.vm.property.GetAll      *  mgmt  vault     deny
        admin.vm.property.GetAll      *  mgmt  @anyvm    allow target=dom0
        admin.odyssey.vmm.Define      *  mgmt  @anyvm    allow target=dom0
        admin.odyssey.policy.Pending  *  mgmt  @adminvm  allow target=dom0

        """
        try FileManager.default.createDirectory(atPath: h.dir + "/state/policy.d", withIntermediateDirectories: true)
        try grants.write(toFile: h.dir + "/state/policy.d/50-mgmt.policy", atomically: true, encoding: .utf8)
        try h.daemon.start()
        h.daemon.policy.reload(reason: "test")
        try h.daemon.runtime.start("mgmt")
        func inMgmt(_ command: String) throws -> (Int32, String, String) { try h.run("mgmt", command, user: "user") }
        let uuid = { (n: String) throws -> String in
            try mapped { () throws(DomainError) in try h.daemon.store.snapshot().domain(n).uuid.text }
        }

        let vault = try uuid("vault").uppercased(), work = try uuid("work").uppercased()
        var r = try inMgmt("ody-call uuid:\(vault) admin.vm.property.GetAll < /dev/null")
        XCTAssertNotEqual(r.0, 0, "vault's properties through its upper-case UUID: \(r.1)")
        XCTAssertFalse(r.1.contains("label"), r.1)
        r = try inMgmt("ody-call uuid:\(work) admin.vm.property.GetAll < /dev/null")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.contains("label default=False type=label"), r.1)

        r = try inMgmt("printf 'root_dir=/\\ninit=/bin/sh\\narg1=-c\\narg2=id\\n' | ody-call work admin.odyssey.vmm.Define+native")
        XCTAssertTrue(r.1.contains("PermissionDenied") && r.1.contains("admin domain's alone"), r.1 + r.2)
        r = try inMgmt("ody-call @adminvm admin.odyssey.policy.Pending < /dev/null")
        XCTAssertTrue(r.1.contains("PermissionDenied") && r.1.contains("admin domain's alone"), r.1 + r.2)
    }
}
