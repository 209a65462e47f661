// admin.Events: order, filtering, slow subscribers, lifecycle events.
import Foundation
import Synchronization
import XCTest
@testable import Host

/// One admin.Events subscriber served in process on a socketpair.
final class Subscriber: @unchecked Sendable {
    let reader: EventReader
    let clientFD: Int32
    let done = DispatchSemaphore(value: 0)

    init(_ h: AdminHarness, as caller: String = "dom0", dest: String = "dom0") {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        clientFD = fds[0]
        reader = EventReader(fd: fds[0])
        let serverFD = fds[1], methods = h.methods, done = self.done
        Thread.detachNewThread {
            _ = methods.handle(AdminRequest(method: "admin.Events", dest: dest), callerSource: caller, stream: AdminStream(fd: serverFD))
            close(serverFD)
            done.signal()
        }
        let first = reader.next()
        precondition(first?.name == "connection-established", "first event: \(String(describing: first))")
    }

    func next() -> EventReader.Event? { reader.next() }

    func hangUp() -> Bool {
        close(clientFD)
        return done.wait(timeout: .now() + 5) == .success
    }
}

final class EventTests: XCTestCase {
    func testEventsInQubesFormat() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        let s = Subscriber(h)
        h.create("work", template: "tpl", label: "blue")
        XCTAssertEqual(s.next(), .init(subject: "", name: "domain-add", args: ["vm", "work"]))
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-tag-add:isolation-native", args: ["tag", "isolation-native"]))
        // qubesd's order: each change's pre-event first, with the same arguments.
        h.ok("admin.vm.property.Set", "memory", dest: "work", payload: "800")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "property-pre-set:memory", args: ["name", "memory", "newvalue", "800", "oldvalue", "400"]))
        XCTAssertEqual(s.next(), .init(subject: "work", name: "property-set:memory", args: ["name", "memory", "newvalue", "800", "oldvalue", "400"]))
        h.ok("admin.vm.property.Reset", "memory", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "property-pre-reset:memory", args: ["name", "memory", "oldvalue", "800"]))
        XCTAssertEqual(s.next(), .init(subject: "work", name: "property-reset:memory", args: ["name", "memory", "oldvalue", "800"]))
        h.ok("admin.vm.feature.Set", "f", dest: "work", payload: "v")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-feature-pre-set:f", args: ["feature", "f", "value", "v"]))
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-feature-set:f", args: ["feature", "f", "value", "v"]))
        h.ok("admin.vm.feature.Remove", "f", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-feature-pre-delete:f", args: ["feature", "f"]))
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-feature-delete:f", args: ["feature", "f"]))
        h.ok("admin.vm.tag.Set", "t", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-tag-add:t", args: ["tag", "t"]))
        h.ok("admin.vm.tag.Remove", "t", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-tag-delete:t", args: ["tag", "t"]))
        h.ok("admin.property.Set", "default_template", payload: "tpl")
        XCTAssertEqual(s.next()?.name, "property-pre-set:default_template")
        XCTAssertEqual(s.next(), .init(subject: "", name: "property-set:default_template", args: ["name", "default_template", "newvalue", "tpl", "oldvalue", ""]))
        // A failed start: pre-start, then start-failed with the reason.
        _ = h.fails("admin.vm.Start", dest: "work")
        XCTAssertEqual(s.next()?.name, "domain-pre-start")
        let failed = s.next()
        XCTAssertEqual(failed?.name, "domain-start-failed")
        XCTAssertEqual(failed?.args.first, "reason")
        h.ok("admin.vm.Remove", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "", name: "domain-delete", args: ["vm", "work"]))
        XCTAssertTrue(s.hangUp(), "the stream ends when the client hangs up")
        XCTAssertEqual(h.methods.hub.subscriberCount, 0)
    }

    func testBackendPowerStatesBecomeLifecycleEvents() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        let s = Subscriber(h)
        func backend(_ state: PowerState, _ domain: String = "work") {
            h.daemon.events.publish(HostEvent(kind: .lifecycle, source: "vmm.test", domain: domain, state: state))
        }
        backend(.running)      // started outside admin.vm.Start (ody run, a qrexec call)
        backend(.running)      // repeated: nothing new
        backend(.paused)
        backend(.running)
        backend(.halted)
        backend(.crashed)      // already halted: nothing new
        backend(.running, "not-in-the-store")
        h.ok("admin.vm.feature.Set", "end", dest: "work", payload: "1")
        let names = (0..<12).compactMap { _ in s.next()?.name }
        // qubesd's order: xid and start_time announced, domain-spawn, domain-start; domain-shutdown,
        // domain-stopped, xid and start_time announced again.
        XCTAssertEqual(names, ["property-reset:xid", "property-reset:start_time", "domain-spawn", "domain-start",
                               "domain-paused", "domain-unpaused",
                               "domain-shutdown", "domain-stopped", "property-reset:xid", "property-reset:start_time",
                               "domain-feature-pre-set:end", "domain-feature-set:end"])
        XCTAssertTrue(s.hangUp())
    }

    func testEventsForOneDomain() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("a", template: "tpl"); h.create("b", template: "tpl")
        let s = Subscriber(h, dest: "a")
        h.ok("admin.vm.feature.Set", "x", dest: "b", payload: "1")
        h.ok("admin.vm.feature.Set", "x", dest: "a", payload: "2")
        XCTAssertEqual(s.next(), .init(subject: "a", name: "domain-feature-pre-set:x", args: ["feature", "x", "value", "2"]))
        XCTAssertEqual(s.next(), .init(subject: "a", name: "domain-feature-set:x", args: ["feature", "x", "value", "2"]))
        XCTAssertTrue(s.hangUp())
    }

    func testFilteredEventsForADelegatedDomain() throws {
        let rule = "mgmt @tag:managed allow,target=dom0"
        let h = try AdminHarness(grants: ["admin-global-ro": "mgmt @adminvm allow,target=dom0\n" + rule])
        h.create("tpl", klass: "TemplateVM")
        for n in ["m1", "other", "mgmt"] { h.create(n, template: "tpl") }
        h.ok("admin.vm.tag.Set", "managed", dest: "m1")
        let mine = Subscriber(h, as: "mgmt"), all = Subscriber(h)
        h.ok("admin.vm.feature.Set", "x", dest: "other", payload: "1")
        h.ok("admin.vm.feature.Set", "x", dest: "m1", payload: "1")
        h.ok("admin.property.Set", "default_template", payload: "tpl")
        h.ok("admin.vm.tag.Remove", "managed", dest: "m1")   // the last event mgmt may see about m1? No: after removal it no longer may.
        h.ok("admin.vm.feature.Set", "y", dest: "m1", payload: "1")
        XCTAssertEqual(mine.next()?.name, "domain-feature-pre-set:x")
        XCTAssertEqual(mine.next()?.subject, "m1")
        XCTAssertEqual(mine.next()?.name, "property-pre-set:default_template")
        XCTAssertEqual(mine.next()?.name, "property-set:default_template")
        XCTAssertNil(mine.reader.next(timeoutMs: 300), "nothing about other, nor about m1 once it is no longer managed")
        XCTAssertEqual((0..<9).compactMap { _ in all.next()?.subject }, ["other", "other", "m1", "m1", "", "", "m1", "m1", "m1"])
        XCTAssertTrue(mine.hangUp()); XCTAssertTrue(all.hangUp())
        // Without admin.Events on @adminvm, no stream at all.
        let denied = try AdminHarness(grants: ["admin-global-ro": rule])
        XCTAssertEqual(denied.fails("admin.Events", as: "mgmt"), .permissionDenied())
    }

    func testOrderUnderConcurrentChanges() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        let names = ["d0", "d1", "d2", "d3"]
        for n in names { h.create(n, template: "tpl") }
        let subs = (0..<3).map { _ in Subscriber(h) }
        let perWriter = 40
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            for v in 1...perWriter { h.ok("admin.vm.property.Set", "memory", dest: names[i], payload: String(500 + v)) }
        }
        var sequences: [[EventReader.Event]] = []
        for s in subs {
            var seq: [EventReader.Event] = []
            // Each set is property-pre-set then property-set.
            for _ in 0..<(names.count * perWriter * 2) { if let e = s.next() { seq.append(e) } }
            XCTAssertEqual(seq.count, names.count * perWriter * 2)
            sequences.append(seq)
        }
        XCTAssertEqual(sequences[0], sequences[1]); XCTAssertEqual(sequences[0], sequences[2])
        for n in names {   // each writer's changes in its own order
            let values = sequences[0].filter { $0.subject == n && $0.name == "property-set:memory" }.map { Int($0.args[3])! }
            XCTAssertEqual(values, (1...perWriter).map { 500 + $0 })
        }
        for s in subs { XCTAssertTrue(s.hangUp()) }
    }

    func testSlowSubscriberIsCutOffOthersKeepUp() throws {
        let h = try AdminHarness(eventQueueLimit: 500)
        let slow = Subscriber(h)      // never reads
        let fast = Subscriber(h)
        let total = 30_000
        let received = Atomic<Int>(0)
        let reader = Thread {
            while received.load(ordering: .relaxed) < total, fast.next() != nil { received.add(1, ordering: .relaxed) }
        }
        reader.start()
        for i in 0..<total {
            h.methods.hub.lifecycle("x", i % 2 == 0 ? "domain-paused" : "domain-unpaused")
            if i % 200 == 199 { while received.load(ordering: .relaxed) < i - 200 { usleep(200) } }
        }
        XCTAssertEqual(slow.done.wait(timeout: .now() + 10), .success, "the slow subscriber was disconnected")
        for _ in 0..<500 where received.load(ordering: .relaxed) < total { usleep(10_000) }
        XCTAssertEqual(received.load(ordering: .relaxed), total, "the fast subscriber got every event")
        XCTAssertEqual(h.methods.hub.subscriberCount, 1)
        XCTAssertTrue(fast.hangUp())
        close(slow.clientFD)
    }

    func testEventsOverTheSocket() throws {
        let h = try AdminHarness()
        try h.startSocket()
        h.create("tpl", klass: "TemplateVM")
        let fd = try UnixSocket.connect(path: h.socket)
        defer { close(fd) }
        try Sys.writeAll(fd, AdminRequest(method: "admin.Events").encoded(), what: "events")
        shutdown(fd, Int32(SHUT_WR))
        let r = EventReader(fd: fd)
        XCTAssertEqual(r.next(), .init(subject: "", name: "connection-established", args: []))
        let c = AdminClient(socketPath: h.socket)
        _ = try c.call(AdminRequest(method: "admin.vm.Create.AppVM", argument: "tpl", payload: Array("name=w label=red".utf8)))
        XCTAssertEqual(r.next(), .init(subject: "", name: "domain-add", args: ["vm", "w"]))
    }
}
