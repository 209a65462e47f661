// A real native domain's start and stop as Qubes' tools see them through
// admin.Events (issue 14, part 5): domain-pre-start, domain-spawn,
// domain-start; domain-shutdown, domain-stopped (qvm-start-daemon waits for
// it), each with xid and start_time announced; and those live properties.
import Domains
import Foundation
import XCTest
@testable import Host

final class QubesLifecycleEventTests: XCTestCase {
    func testStartAndStopEventsInQubesOrderAndLiveProperties() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        let methods = AdminMethods(daemon: h.daemon)
        defer { methods.close() }
        func call(_ method: String, _ arg: String = "", dest: String = "work") -> AdminResponse {
            methods.handle(AdminRequest(method: method, argument: arg, dest: dest), callerSource: "dom0")
        }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let serverFD = fds[1]
        let served = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = methods.handle(AdminRequest(method: "admin.Events"), callerSource: "dom0", stream: AdminStream(fd: serverFD))
            close(serverFD)
            served.signal()
        }
        var events: [String] = []
        var buffer: [UInt8] = []
        /// Reads event frames (1\0subject\0name\0(k\0v\0)*\0) until `name` arrives; false on timeout.
        func readUntil(_ name: String) -> Bool {
            var pfd = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            while !events.contains(name) {
                guard poll(&pfd, 1, 60_000) == 1 else { return false }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = read(fds[0], &chunk, chunk.count)
                guard n > 0 else { return false }
                buffer += chunk[..<n]
                while let end = Self.frameEnd(buffer) {
                    let fields = buffer[..<end].split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                    events.append(fields[2])
                    buffer.removeFirst(end + 1)
                }
            }
            return true
        }
        XCTAssertTrue(readUntil("connection-established"))

        XCTAssertEqual(call("admin.vm.Start"), .success([]))
        XCTAssertTrue(readUntil("domain-start"), "\(events)")
        XCTAssertEqual(events.dropFirst(), ["domain-pre-start", "property-reset:xid", "property-reset:start_time", "domain-spawn", "domain-start"])

        // Live properties while it runs.
        guard case .success(let st) = call("admin.vm.property.Get", "start_time") else { return XCTFail("start_time") }
        let text = String(decoding: st, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("default=True type=str "), text)
        let t = Double(text.dropFirst("default=True type=str ".count)) ?? 0
        XCTAssertLessThan(abs(t - Date().timeIntervalSince1970), 3600, "a UNIX time of this start: \(text)")
        XCTAssertEqual(call("admin.vm.property.Get", "xid"), .success(Array("default=True type=int -1".utf8)),
                       "no provider reports a domain id through the plugin ABI yet")

        events.removeAll()
        XCTAssertEqual(call("admin.vm.Shutdown", "wait"), .success([]))
        XCTAssertTrue(readUntil("property-reset:start_time"), "\(events)")
        XCTAssertEqual(events, ["domain-shutdown", "domain-stopped", "property-reset:xid", "property-reset:start_time"])
        XCTAssertEqual(call("admin.vm.property.Get", "start_time"), .success(Array("default=True type=str ".utf8)))
        close(fds[0])
        XCTAssertEqual(served.wait(timeout: .now() + 10), .success)
    }

    /// qvm-clone of a running domain: its private volume as of its last stop
    /// (Qubes' pools copy a running volume's last committed state).
    func testCloneOfARunningDomainCopiesItsPrivateVolumeAsOfItsLastStop() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.create("copy")
        let methods = AdminMethods(daemon: h.daemon)
        defer { methods.close() }
        func call(_ method: String, _ arg: String = "", dest: String, payload: String = "") -> AdminResponse {
            methods.handle(AdminRequest(method: method, argument: arg, dest: dest, payload: Array(payload.utf8)), callerSource: "dom0")
        }
        func token() throws -> String {
            guard case .success(let t) = call("admin.vm.volume.CloneFrom", "private", dest: "work") else { throw XCTSkip("CloneFrom failed") }
            return String(decoding: t, as: UTF8.self)
        }
        try h.daemon.runtime.start("work")
        // Never stopped: nothing committed yet.
        guard case .failure(let e) = call("admin.vm.volume.CloneTo", "private", dest: "copy", payload: try token()) else {
            return XCTFail("a clone of a domain that never stopped")
        }
        XCTAssertTrue(e.message.contains("shut it down first"), e.message)
        XCTAssertEqual(try h.run("work", "echo committed > /rw/first").0, 0)
        try h.daemon.runtime.shutdown("work", wait: true)
        try h.daemon.runtime.start("work")
        XCTAssertEqual(try h.run("work", "echo live > /rw/second").0, 0)
        XCTAssertEqual(call("admin.vm.volume.CloneTo", "private", dest: "copy", payload: try token()), .success([]))
        // The destination must be halted; the source's root is not cloned while it runs.
        try h.daemon.runtime.start("copy")
        XCTAssertEqual(call("admin.vm.volume.CloneTo", "private", dest: "copy", payload: try token()),
                       .failure(AdminError("QubesVMNotHaltedError", "Domain is not powered off: 'copy'")))
        let r = try h.run("copy", "cat /rw/first; ls /rw/second 2>/dev/null || echo no-second")
        XCTAssertEqual(r.1, "committed\nno-second\n")
    }

    /// The index of the NUL that ends the first whole event frame, if any:
    /// `1\0subject\0name\0` then key/value pairs, then an empty field.
    static func frameEnd(_ b: [UInt8]) -> Int? {
        var nuls = 0, i = 0
        while i < b.count {
            if b[i] == 0 {
                nuls += 1
                // After the 3 header fields, pairs follow; an empty field (two NULs in a row) ends the frame.
                if nuls > 3, i > 0, b[i - 1] == 0, (nuls - 3) % 2 == 1 { return i }
            }
            i += 1
        }
        return nil
    }
}
