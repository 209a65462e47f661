// odysseyd killed with SIGKILL while a domain runs: the domain keeps running,
// and the restarted daemon re-adopts it (its agent reconnects) without losing
// any committed change.
import Foundation
import XCTest
@testable import Host

final class DaemonRestartTests: XCTestCase {
    func testRunningDomainSurvivesDaemonSIGKILLAndIsReadopted() throws {
        let d = try DaemonProcess("restart")
        defer { d.tearDown() }
        try d.startWithRunningDomain("work")
        XCTAssertEqual(try d.ody(["run", "work", "-p", "--user", "root", "--", "echo before > /rw/mark"]).0, 0)

        kill(d.pid, SIGKILL)          // no clean stop at all
        usleep(200_000)
        try d.start()
        var r = (Int32(1), "")
        for _ in 0..<100 {            // the agent reconnects on its own
            r = try d.ody(["run", "work", "-p", "--", "cat /rw/mark"])
            if r.0 == 0 { break }
            usleep(50_000)
        }
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(r.1, "before\n", "same domain, same private volume, no restart")
        func state() throws -> String? {
            try d.ody(["ls"]).1.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.first == "work" }.map { String($0[1]) }
        }
        XCTAssertEqual(try state(), "Running")
        XCTAssertEqual(try d.ody(["shutdown", "--wait", "work"]).0, 0)
        XCTAssertEqual(try state(), "Halted")
    }
}
