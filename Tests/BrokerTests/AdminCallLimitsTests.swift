// In-process dom0 services (the admin.* methods called from domains) are
// bounded (issue 11, finding 16: 900 held admin calls kept 921 daemon
// threads): a call must send its whole stdin within the deadline, and one
// source holds at most HostServices.inProcessPerSource calls at once; the
// next is refused without a thread. Real socket channels, the real handshake.
import Foundation
import Logging
import Qrexec
import XCTest
@testable import Host

final class AdminCallLimitsTests: XCTestCase {
    private func services(deadline: Double) -> HostServices {
        let hs = HostServices(directories: [], logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }, stdinDeadline: deadline)
        hs.register(prefix: "test.") { _, _, _, stdin in .bytes(stdout: Array("got \(stdin.count)".utf8), exitCode: 0) }
        return hs
    }

    /// A caller's end of a new call: HELLO exchanged, nothing sent after.
    private func open(_ hs: HostServices, source: String) throws -> (fd: Int32, stream: QrexecStream) {
        var sv: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv), 0)
        hs.serve(channel: sv[1], service: "test.Held", source: source, requestedTarget: "dom0")
        return (sv[0], QrexecStream(fd: sv[0], incoming: .serviceToClient))
    }

    /// True once the host closes its end (read returns EOF), within 10 s.
    private func closedByHost(_ fd: Int32) -> Bool {
        var buf = [UInt8](repeating: 0, count: 4096)
        let end = Date().addingTimeInterval(10)
        while Date() < end {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) >= 0 else { return false }
            if p.revents != 0 { let n = read(fd, &buf, buf.count); if n <= 0 { return true } }
        }
        return false
    }

    private func threadCount() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? -1
    }

    func testStdinNeverEndingIsCutAtTheDeadline() throws {
        let hs = services(deadline: 0.5)
        var (fd, stream) = try open(hs, source: "mgmt")
        defer { close(fd) }
        _ = try stream.handshake()
        try stream.send(.stdin(Array("part of a request".utf8)))   // and never EOF
        XCTAssertTrue(closedByHost(fd), "held call still open after the deadline")
        // A complete call is still answered.
        var (fd2, s2) = try open(hs, source: "mgmt")
        defer { close(fd2) }
        _ = try s2.handshake()
        try s2.send(.stdin(Array("abc".utf8)))
        try s2.send(.stdin([]))   // EOF
        XCTAssertEqual(try s2.receive(), .stdout(Array("got 3".utf8)))
    }

    func testHeldCallsPerSourceAreCappedWithoutAThreadEach() throws {
        let hs = services(deadline: 60)
        let before = threadCount()
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0..<HostServices.inProcessPerSource {
            var (fd, stream) = try open(hs, source: "mgmt")
            _ = try stream.handshake()
            held.append(fd)
        }
        var extra: [Int32] = []
        defer { for fd in extra { close(fd) } }
        for _ in 0..<40 { extra.append(try open(hs, source: "mgmt").fd) }
        for fd in extra { XCTAssertTrue(closedByHost(fd), "a call over the cap was kept") }
        XCTAssertLessThanOrEqual(threadCount() - before, HostServices.inProcessPerSource + 8)
        // Another source is not held to mgmt's share.
        var (fd, s) = try open(hs, source: "other")
        defer { close(fd) }
        _ = try s.handshake()
        try s.send(.stdin([]))
        XCTAssertEqual(try s.receive(), .stdout(Array("got 0".utf8)))
    }
}
