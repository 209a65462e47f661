// What no policy grant gives a domain (issue 11, finding 10): raw backend
// parameters and host paths, answering asks; and a clone needs the read right
// on its source.
import Foundation
import XCTest
@testable import Host

final class AuthorityTests: XCTestCase {
    /// The broadest delegation there is: every admin include file, every target.
    let everything = "mgmt @adminvm allow,target=dom0\nmgmt @anyvm allow,target=dom0"

    private func harnessGrantingEverything() throws -> AdminHarness {
        let h = try AdminHarness(grants: ["admin-global-rwx": everything, "admin-global-ro": everything,
                                          "admin-local-rwx": everything, "admin-local-ro": everything])
        h.create("tpl", klass: "TemplateVM")
        h.create("mgmt", template: "tpl")
        h.create("made", template: "tpl", as: "mgmt")
        return h
    }

    private func assertAdminDomainOnly(_ e: AdminError, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(e.type, "PermissionDenied", what, file: file, line: line)
        XCTAssertTrue(e.message.contains("admin domain's alone"), "\(what): \(e.message)", file: file, line: line)
    }

    func testBackendMethodsAreDom0sAloneWhateverTheGrant() throws {
        let h = try harnessGrantingEverything()
        let define = "root_dir=/\nbind_ro.0=/etc\ninit=/usr/bin/sh\narg1=-c\narg2=id > /tmp/pwned"
        assertAdminDomainOnly(h.fails("admin.odyssey.vmm.Define", dest: "made", payload: define, as: "mgmt"), "Define")
        for m in ["Start", "Info", "Kill", "Shutdown", "Pause", "Unpause", "Undefine"] {
            assertAdminDomainOnly(h.fails("admin.odyssey.vmm.\(m)", dest: "made", as: "mgmt"), m)
        }
        assertAdminDomainOnly(h.fails("admin.odyssey.vmm.List", as: "mgmt"), "List")
        // dom0 still reaches the method (here: no backend is loaded, a different error).
        XCTAssertNotEqual(h.fails("admin.odyssey.vmm.List").type, "PermissionDenied")
    }

    func testTemplateFromAHostPathIsDom0sAlone() throws {
        let h = try harnessGrantingEverything()
        let secret = NSTemporaryDirectory() + "odyssey-secret-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: secret + "/etc", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        try "KEY".write(toFile: secret + "/etc/secret.gpg", atomically: true, encoding: .utf8)
        assertAdminDomainOnly(h.fails("admin.odyssey.template.Create", "from-rootfs", payload: "name=stolen label=gray source=\(secret)",
                                      as: "mgmt"), "from-rootfs")
        XCTAssertFalse(h.ok("admin.vm.List").contains("stolen"))
        // dom0 may.
        h.ok("admin.odyssey.template.Create", "from-rootfs", payload: "name=mine label=gray source=\(secret)")
    }

    func testAnsweringAsksIsDom0sAlone() throws {
        let h = try harnessGrantingEverything()
        assertAdminDomainOnly(h.fails("admin.odyssey.policy.Pending", as: "mgmt"), "Pending")
        assertAdminDomainOnly(h.fails("admin.odyssey.policy.Answer", "1", payload: "allow", as: "mgmt"), "Answer")
        XCTAssertEqual(h.ok("admin.odyssey.policy.Pending").filter { !$0.isWhitespace }, "[]")
    }

    func testCloneNeedsTheReadRightOnTheSource() throws {
        // Create rights everywhere, read rights only on what mgmt made.
        let h = try AdminHarness(grants: ["admin-global-rwx": "mgmt @adminvm allow,target=dom0",
                                          "admin-local-ro": "mgmt @tag:created-by-mgmt allow,target=dom0"])
        h.create("secret", klass: "StandaloneVM")
        h.create("mgmt", klass: "StandaloneVM")
        XCTAssertEqual(h.fails("admin.vm.Create.StandaloneVM", "secret", payload: "name=stolen label=red", as: "mgmt"), .permissionDenied())
        XCTAssertFalse(h.ok("admin.vm.List").contains("stolen"))
        // What it may read, it may clone.
        h.create("own", klass: "StandaloneVM", as: "mgmt")
        h.ok("admin.vm.Create.StandaloneVM", "own", payload: "name=copy label=red", as: "mgmt")
        XCTAssertTrue(h.ok("admin.vm.List").contains("copy "))
    }

    /// Issue 11, finding 16, as the red team did it: a domain-level delegate.
    func testDelegateCannotSetAbsurdValuesOrConfusableNames() throws {
        let h = try harnessGrantingEverything()
        h.create("vault", template: "tpl")
        for (p, v) in [("maxmem", "1073741824"), ("vcpus", "100000"), ("qrexec_timeout", "99999999"), ("kernel", "/etc/shadow")] {
            XCTAssertEqual(h.fails("admin.vm.property.Set", p, dest: "made", payload: v, as: "mgmt").type, "QubesPropertyValueError", p)
        }
        XCTAssertEqual(h.fails("admin.vm.feature.Set", "preload-dispvm-max", dest: "made", payload: "64", as: "mgmt").type, "QubesValueError")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "maxmem", dest: "made"), "default=True type=int 4000")
        for n in ["vauIt", "Dom0", "None"] {
            XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=\(n) label=red", as: "mgmt").type, "QubesValueError", n)
        }
        XCTAssertEqual(h.ok("admin.vm.List").split(separator: "\n").count, 5)
    }
}
