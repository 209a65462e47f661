// `ody` inside a domain (issue 6 item 5): admin calls and `ody run` go as
// qrexec calls through the domain's agent, under the host's policy; admin.*
// calls redirected to dom0 are answered by the daemon's admin methods.
import Domains
import Foundation
import XCTest
@testable import Host

final class DelegatedAdminTests: XCTestCase {
    func testOdyInsideADomainUnderPolicy() throws {
        let h = try Host("odyssey-da")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        // The services shipped to every domain (qubes.VMShell), where the harness config looks for them.
        try FileManager.default.copyItem(atPath: Build.root + "/config/domain-rpc", toPath: h.dir + "/domain-rpc")
        for n in ["mgmt", "work", "vault", "dvm"] { try h.create(n) }
        try mapped { () throws(DomainError) in
            try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
            try h.daemon.store.setProperty("default_dispvm", of: "mgmt", to: "dvm")
            try h.daemon.store.setProperty("label", of: "work", to: "green")
        }
        // mgmt may list itself and work (not vault), read their properties
        // for `ody ls`, and read work's label; nothing else.
        let policyFile = h.dir + "/state/policy.d/50-mgmt.policy"
        let grants = """
        admin.vm.List              *       mgmt  @adminvm  allow target=dom0
        admin.vm.List              *       mgmt  work      allow target=dom0
        admin.vm.List              *       mgmt  mgmt      allow target=dom0
        admin.vm.property.GetAll   *       mgmt  @adminvm  allow target=dom0
        admin.vm.property.GetAll   *       mgmt  work      allow target=dom0
        admin.vm.property.GetAll   *       mgmt  mgmt      allow target=dom0
        admin.vm.property.Get      +label  mgmt  work      allow target=dom0
        admin.Events               *       mgmt  @adminvm  allow target=dom0
        admin.Events               *       mgmt  work      allow target=dom0

        """
        try FileManager.default.createDirectory(atPath: h.dir + "/state/policy.d", withIntermediateDirectories: true)
        try grants.write(toFile: policyFile, atomically: true, encoding: .utf8)
        try h.daemon.start()
        h.daemon.policy.reload(reason: "test")
        XCTAssertEqual(h.daemon.runtime.powerState("mgmt"), .halted)
        try h.daemon.runtime.start("mgmt")

        func inMgmt(_ command: String) throws -> (Int32, String, String) { try h.run("mgmt", command, user: "user") }
        let ody = "/.odyssey/bin/ody"

        // ody ls: only what the policy lets mgmt see.
        var r = try inMgmt("\(ody) ls")
        XCTAssertEqual(r.0, 0, r.2)
        let names = Set(r.1.split(separator: "\n").dropFirst().map { String($0.split(separator: " ")[0]) })
        XCTAssertEqual(names.subtracting(["dom0"]), ["mgmt", "work"], r.1)   // dom0: the @adminvm grant
        XCTAssertTrue(r.1.contains("green"), r.1)

        // A granted property, and ones that are not.
        r = try inMgmt("\(ody) prefs work label")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(r.1, "green\n")
        r = try inMgmt("\(ody) prefs work netvm")
        XCTAssertEqual(r.0, 1)
        XCTAssertTrue(r.2.contains("PermissionDenied") || r.2.contains("refused"), r.2)
        r = try inMgmt("\(ody) prefs vault label")
        XCTAssertEqual(r.0, 1)
        XCTAssertTrue(r.2.contains("PermissionDenied") || r.2.contains("refused"), r.2)
        // A raw call of a method not granted: refused by qrexec policy.
        XCTAssertEqual(try inMgmt("ody-call @adminvm admin.vm.Remove < /dev/null").0, 126)
        XCTAssertEqual(try inMgmt("ody-call vault admin.vm.Kill < /dev/null").0, 126)
        XCTAssertNotEqual(h.daemon.runtime.powerState("vault"), .running)
        // admin.Events streams over qrexec: mgmt sees events of the domains it may see.
        let box = EventsBox()
        nonisolated(unsafe) let host = h   // used by that one thread only while this one waits
        Thread.detachNewThread { box.set(try? host.run("mgmt", "\(ody) events | head -1", user: "user")) }
        usleep(700_000)
        for i in 0..<6 where !box.done {
            try mapped { () throws(DomainError) in try h.daemon.store.setFeature("probe", of: "work", to: "\(i)") }
            usleep(200_000)
        }
        for _ in 0..<50 where !box.done { usleep(100_000) }
        XCTAssertTrue(box.done, "ody events ends once its reader (head) is gone")
        XCTAssertTrue(box.output.hasPrefix("work domain-feature-pre-set:probe"), box.output)

        // ody run: qubes.VMExec to work is denied by the default policy...
        r = try inMgmt("\(ody) run work -p -- echo hi")
        XCTAssertEqual(r.0, 126, r.2)
        XCTAssertEqual(r.1, "")
        XCTAssertNotEqual(h.daemon.runtime.powerState("work"), .running, "a refused call starts nothing")
        // ...and allowed to a disposable (90-default.policy).
        r = try inMgmt("\(ody) run --dispvm -p -- echo hi")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(r.1, "hi\n")

        // Granted at run time: work starts and runs the words as they are.
        try (grants + "qubes.VMExec  *  mgmt  work  allow\nqubes.VMShell  *  mgmt  work  allow\n")
            .write(toFile: policyFile, atomically: true, encoding: .utf8)
        h.daemon.policy.reload(reason: "test")
        r = try inMgmt("\(ody) run work -p -- echo hi")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(r.1, "hi\n")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .running)
        r = try inMgmt("\(ody) run work -p -- echo 'a  b+c-d' \"it's\"")
        XCTAssertEqual(r.1, "a  b+c-d it's\n", r.2)
        r = try inMgmt("\(ody) run work -p -- 'hostname; exit 3'")   // one line: qubes.VMShell
        XCTAssertEqual(r.0, 3, r.2)
        XCTAssertEqual(r.1, "work\n")
        r = try inMgmt("\(ody) run work -p -- sh -c 'exit 9'")
        XCTAssertEqual(r.0, 9, r.2)
        r = try inMgmt("\(ody) run work -p -- nosuchprogram")
        XCTAssertEqual(r.0, 127, r.2)
        // vault is still out of reach.
        XCTAssertEqual(try inMgmt("\(ody) run vault -p -- echo hi").0, 126)
    }
}

/// The output of a command run on another thread.
final class EventsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var result: (Int32, String, String)??
    func set(_ r: (Int32, String, String)?) { lock.lock(); result = .some(r); lock.unlock() }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return result != nil }
    var output: String { lock.lock(); defer { lock.unlock() }; return (result ?? nil)?.1 ?? "" }
}
