// `ody run` end to end: the real ody binary, the daemon's qrexec socket, the
// data channel passed over, a native domain's agent.
import Foundation
import XCTest
@testable import Host

final class RunCommandTests: XCTestCase {
    func runOdy(_ h: Host, _ args: [String], stdin: String = "") throws -> (Int32, String, String) {
        try runCapturing([Build.dir + "/ody", "run", "--socket", h.dir + "/state/admin.sock"] + args, stdin: stdin)
    }

    func testRunStreamsAndReturnsTheStatus() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.start()   // admin + qrexec sockets

        // Halted domains are started first, as qvm-run does.
        var r = try runOdy(h, ["work", "-p", "--", "echo out; echo err >&2; exit 7"])
        XCTAssertEqual(r.0, 7)
        XCTAssertEqual(r.1, "out\n")
        XCTAssertEqual(r.2, "err\n")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .running)

        r = try runOdy(h, ["work", "-p", "--", "cat"], stdin: "through the channel")
        XCTAssertEqual(r.1, "through the channel")
        // Several arguments are passed as they are, quotes and all.
        r = try runOdy(h, ["work", "-p", "--user", "root", "--", "echo", "a  b", "it's"])
        XCTAssertEqual(r.1, "a  b it's\n")
        r = try runOdy(h, ["work", "-p", "--", "id -un"])
        XCTAssertEqual(r.1, "user\n", "default user is 'user'")
        // Detached start without --pass-io returns at once with 0.
        XCTAssertEqual(try runOdy(h, ["work", "--", "sleep 5"]).0, 0)

        // Errors are clear and exit 125 (qrexec failure).
        r = try runOdy(h, ["nosuch", "-p", "--", "true"])
        XCTAssertEqual(r.0, 125)
        XCTAssertTrue(r.2.contains("nosuch"), r.2)
        r = try runOdy(h, ["work", "-p", "--user=-rf", "--", "true"])
        XCTAssertEqual(r.0, 125)
        XCTAssertTrue(r.2.contains("invalid user name"), r.2)
        XCTAssertNotEqual(try runOdy(h, ["work", "-p"]).0, 0, "a command is required")
    }
}
