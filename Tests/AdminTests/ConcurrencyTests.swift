// Many clients at once on the real socket.
import Foundation
import XCTest
import Synchronization
@testable import Host

final class ConcurrencyTests: XCTestCase {
    func testHundredSimultaneousClients() throws {
        let h = try AdminHarness()
        try h.startSocket()
        h.create("tpl", klass: "TemplateVM")
        for i in 0..<10 { h.create("w\(i)", template: "tpl") }
        // 100 connections open at the same time, then all requests, then all replies.
        var fds: [Int32] = []
        for _ in 0..<100 { fds.append(try UnixSocket.connect(path: h.socket)) }
        for (i, fd) in fds.enumerated() {
            let req = i % 2 == 0 ? AdminRequest(method: "admin.vm.List")
                : AdminRequest(method: "admin.vm.property.Set", argument: "memory", dest: "w\(i % 10)", payload: Array(String(500 + i).utf8))
            try Sys.writeAll(fd, req.encoded(), what: "req")
            shutdown(fd, Int32(SHUT_WR))
        }
        var ok = 0
        for (i, fd) in fds.enumerated() {
            let reply = try AdminResponse.decode(try Sys.readAll(fd, limit: 1 << 20, what: "reply"))
            close(fd)
            if case .success(let b) = reply {
                ok += 1
                if i % 2 == 0 { XCTAssertEqual(String(decoding: b, as: UTF8.self).split(separator: "\n").count, 12) }
            } else { XCTFail("client \(i): \(reply)") }
        }
        XCTAssertEqual(ok, 100)
        // And again from 100 threads, each with its own connections.
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 100) { i in
            let c = AdminClient(socketPath: h.socket)
            for _ in 0..<5 {
                do { _ = try c.call(AdminRequest(method: "admin.vm.property.Get", argument: "memory", dest: "w\(i % 10)")) }
                catch { failures.add(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    }
}
