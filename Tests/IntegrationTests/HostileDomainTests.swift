// Issue 11: what a domain's unprivileged user could do to the real daemon
// process, tried the way an attacker inside the domain would.
import Foundation
import XCTest

final class HostileDomainTests: XCTestCase {
    /// Finding 1: the caller keeps feeding stdin into a dom0 service that has
    /// already exited (qubes.GetDate reads none); the host's write to that
    /// pipe used to raise SIGPIPE and kill odysseyd (exit 141, nothing logged).
    func testStdinFloodIntoAnExitedDom0ServiceLeavesTheDaemonServing() throws {
        let d = try DaemonProcess("sigpipe")
        defer { d.tearDown() }
        try d.startWithRunningDomain("work")
        for _ in 0..<3 {   // a few times: one lucky ordering must not hide it
            let r = try d.ody(["run", "work", "-p", "--", "head -c 67108864 /dev/zero | ody-call @default qubes.GetDate; echo status=$?"])
            XCTAssertTrue(r.1.contains("status="), r.1)
        }
        XCTAssertTrue(d.alive, "odysseyd died; log:\n\(d.log)")
        let ls = try d.ody(["ls"])
        XCTAssertEqual(ls.0, 0, ls.1)
        let date = try d.ody(["run", "work", "-p", "--", "ody-call @default qubes.GetDate </dev/null"])
        XCTAssertEqual(date.0, 0, date.1)
        XCTAssertTrue(date.1.hasPrefix("20"), "still answers: \(date.1)")
    }

    /// Finding 9: `ody run DOMAIN -- CMD` without -p starts the command
    /// detached, as qvm-run does, and returns; it used to run nothing.
    func testRunWithoutPassIOStartsTheCommand() throws {
        let d = try DaemonProcess("justexec")
        defer { d.tearDown() }
        try d.start()
        try d.makeBusyboxTemplate()
        XCTAssertEqual(try d.ody(["create", "work", "--class", "AppVM", "--template", "tpl", "--label", "blue"]).0, 0)
        let r = try d.ody(["run", "work", "--user", "root", "--", "echo ran > /rw/mark"])   // also starts work
        XCTAssertEqual(r.0, 0, r.1)
        var seen = ""
        for _ in 0..<100 {
            seen = try d.ody(["run", "work", "-p", "--", "cat /rw/mark 2>/dev/null"]).1
            if seen == "ran\n" { break }
            usleep(20_000)
        }
        XCTAssertEqual(seen, "ran\n")
        let missing = try d.ody(["run", "work", "--", "/no/such/program"])   // sh starts; its failure is not reported
        XCTAssertEqual(missing.0, 0, missing.1)
    }
}
