// Admin calls held open are bounded (issue 11, finding 16: 900 held calls kept
// 921 daemon threads), and events show only what the methods would.
import Foundation
import Logging
import XCTest
@testable import Host

final class AdminLimitsTests: XCTestCase {
    private func threadCount() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? -1
    }

    /// Waits up to 10 s for a reply on `fd`; nil if none came.
    private func reply(_ fd: Int32) -> AdminResponse? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 10_000) == 1, let bytes = try? Sys.readAll(fd, limit: 1 << 20, what: "reply") else { return nil }
        return try? AdminResponse.decode(bytes)
    }

    private func partialRequest(_ socket: String) throws -> Int32 {
        let fd = try UnixSocket.connect(path: socket)
        try Sys.writeAll(fd, Array("admin.vm.List\0dom0\0name\0".utf8), what: "partial request")   // no EOF: held open
        return fd
    }

    /// The real daemon socket: 300 held calls do not become 300 threads.
    func testHeldCallsDoNotGrowThreadsWithoutBound() throws {
        let h = try AdminHarness()
        try h.startSocket()
        let before = threadCount()
        let held = AdminServer.defaultMaxPerPeer + 44
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<held { fds.append(try partialRequest(h.socket)) }
        // The ones over the cap are refused at once, with the reason.
        let refused = fds.suffix(held - AdminServer.defaultMaxPerPeer).map(reply)
        for r in refused {
            guard case .failure(let e)? = r else { XCTFail("expected a refusal, got \(String(describing: r))"); continue }
            XCTAssertTrue(e.message.contains("too many admin connections"), e.message)
        }
        XCTAssertLessThanOrEqual(threadCount() - before, AdminServer.defaultMaxPerPeer + 8)
    }

    func testRequestDeadlineAndPerPeerCap() throws {
        let dir = NSTemporaryDirectory() + "odyssey-limits-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = AdminServer(path: dir + "/admin.sock", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
                                 requestDeadline: 0.5, maxPerPeer: 4) { _ in .success(Array("ok".utf8)) }
        try server.start(group: nil)
        defer { server.stop() }
        // A request that never completes is answered and closed at the deadline.
        let slow = try partialRequest(dir + "/admin.sock")
        defer { close(slow) }
        guard case .failure(let e)? = reply(slow) else { return XCTFail("no reply at the deadline") }
        XCTAssertEqual(e.type, "ProtocolError")
        XCTAssertTrue(e.message.contains("not complete within"), e.message)
        // Four held, the fifth refused; once they go, calls are served again.
        let held = try (0..<4).map { _ in try partialRequest(dir + "/admin.sock") }
        let fifth = try partialRequest(dir + "/admin.sock")
        guard case .failure(let busy)? = reply(fifth) else { return XCTFail("fifth not refused") }
        XCTAssertTrue(busy.message.contains("too many"), busy.message)
        close(fifth)
        for fd in held { close(fd) }
        var served = false
        for _ in 0..<100 where !served {
            if case .success(let b) = try AdminResponse.decode(try rawCall(dir + "/admin.sock", AdminRequest(method: "admin.vm.List").encoded())) {
                served = b == Array("ok".utf8)
            } else { usleep(50_000) }
        }
        XCTAssertTrue(served)
    }

    func testEventSubscriptionsPerDomainAreCapped() throws {
        let h = try AdminHarness(grants: ["admin-global-ro": "mgmt @adminvm allow,target=dom0"])
        h.create("tpl", klass: "TemplateVM")
        h.create("mgmt", template: "tpl")
        let subs = (0..<EventHub.maxPerDomainCaller).map { _ in Subscriber(h, as: "mgmt") }
        defer { for s in subs { _ = s.hangUp() } }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let answered = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let methods = h.methods, serverFD = fds[1]
        Thread.detachNewThread {
            result.value = methods.handle(AdminRequest(method: "admin.Events"), callerSource: "mgmt", stream: AdminStream(fd: serverFD))
            answered.signal()
        }
        guard answered.wait(timeout: .now() + 10) == .success else { return XCTFail("the subscription over the cap was served") }
        guard case .failure(let e)? = result.value else { return XCTFail("\(String(describing: result.value))") }
        XCTAssertTrue(e.message.contains("too many admin.Events"), e.message)
        // dom0 is not held to a domain's share.
        let admin = Subscriber(h)
        XCTAssertTrue(admin.hangUp())
    }

    /// An event whose arguments name a domain the subscriber may not list
    /// (nor read the property) is not shown; the rest of the stream is.
    func testEventArgumentsNameOnlyDomainsTheSubscriberMaySee() throws {
        let h = try AdminHarness(grants: ["admin-global-ro": "mgmt @adminvm allow,target=dom0\nmgmt m1 allow,target=dom0\nmgmt pub-dvm allow,target=dom0"])
        h.create("tpl", klass: "TemplateVM")
        for n in ["m1", "mgmt", "pub-dvm", "secret-dvm"] { h.create(n, template: "tpl") }
        for n in ["pub-dvm", "secret-dvm"] { h.ok("admin.vm.property.Set", "template_for_dispvms", dest: n, payload: "True") }
        let mine = Subscriber(h, as: "mgmt")
        h.ok("admin.vm.property.Set", "default_dispvm", dest: "m1", payload: "pub-dvm")
        h.ok("admin.vm.property.Set", "default_dispvm", dest: "m1", payload: "secret-dvm")
        h.ok("admin.vm.feature.Set", "x", dest: "m1", payload: "1")
        XCTAssertEqual(mine.next()?.args.prefix(4), ["name", "default_dispvm", "newvalue", "pub-dvm"])   // property-pre-set
        XCTAssertEqual(mine.next()?.args.prefix(4), ["name", "default_dispvm", "newvalue", "pub-dvm"])   // property-set
        XCTAssertEqual(mine.next()?.name, "domain-feature-pre-set:x", "nothing naming secret-dvm")
        XCTAssertEqual(mine.next()?.name, "domain-feature-set:x")
        XCTAssertNil(mine.reader.next(timeoutMs: 300))
        XCTAssertTrue(mine.hangUp())
    }
}

final class ResultBox: @unchecked Sendable {
    var value: AdminResponse?
}
