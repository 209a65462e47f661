// Issue 11, finding 14: a destroyed disposable left its native definition
// behind, each holding a 65,536-uid range, until no domain could be defined.
// Now destroy (and admin.vm.Remove) undefine it: the ranges in use stay flat.
import Domains
import Foundation
import XCTest
@testable import Host

final class DisposableDefinitionTests: XCTestCase {
    func testDestroyedDisposablesLeaveNoDefinitions() throws {
        let h = try Host("odyssey-dd")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("dvm", label: "red")
        try mapped { () throws(DomainError) in try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True") }
        let vmm = try h.daemon.runtime.backends().vmm("native")
        for i in 0..<5 {
            let name = try h.daemon.broker.disposables.withDisposable(template: "dvm") { name in
                XCTAssertTrue(try vmm.list().contains(name), "disposable \(i) is defined while it runs")
                return name
            }
            XCTAssertFalse(try vmm.list().contains(name), "disposable \(i) (\(name)) left its definition behind")
            let defs = (try? FileManager.default.contentsOfDirectory(atPath: h.dir + "/native/domains")) ?? []
            XCTAssertEqual(defs.filter { $0.hasPrefix("disp") }, [], "after disposable \(i)")
        }
    }

    /// admin.vm.Remove of a domain that ran: its definition goes with it.
    func testRemovedDomainLeavesNoDefinition() throws {
        let h = try Host("odyssey-dr")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("gone")
        try h.daemon.runtime.start("gone")
        try h.daemon.runtime.shutdown("gone", wait: true)
        let vmm = try h.daemon.runtime.backends().vmm("native")
        XCTAssertTrue(try vmm.list().contains("gone"))
        try h.daemon.start()   // the admin socket
        let client = AdminClient(socketPath: h.dir + "/state/admin.sock")
        XCTAssertNoThrow(try client.call(AdminRequest(method: "admin.vm.Remove", dest: "gone")))
        XCTAssertFalse(try vmm.list().contains("gone"), "the native definition (and its uid range) must go with the domain")
    }
}
