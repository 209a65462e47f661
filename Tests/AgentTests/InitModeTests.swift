// The agent as PID 1 of a pid namespace (as vmm-native runs it): it reaps
// orphans and, on SIGTERM from the host, stops everything and exits.
import Foundation
import Host
import XCTest

final class InitModeTests: XCTestCase {
    func testAgentAsPID1ReapsOrphansAndExitsOnSIGTERM() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            throw XCTSkip("needs root and unshare(1) for a pid namespace")
        }
        let f = try AgentFixture()
        let closed = DispatchSemaphore(value: 0)
        let l = try f.link("initdom") { _, _ in closed.signal() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--fork", "--pid", "--mount-proc", "--kill-child", AgentBuild.agent]
        var env = ProcessInfo.processInfo.environment
        env["VCHAN_SOCKET_DIR"] = f.socketDir + "/initdom"
        env["ODYSSEY_DOMAIN"] = "initdom"
        env["ODYSSEY_AGENT_NO_INIT"] = nil
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        try l.waitReady(timeoutMs: 20_000)
        XCTAssertEqual(try f.run(l, "cat /proc/1/comm").out, "odyssey-agent\n")
        // An orphan: its shell exits first, PID 1 inherits and must reap it.
        XCTAssertEqual(try f.run(l, "sleep 0.1 >/dev/null 2>&1 & echo started").out, "started\n")
        let zombies = try f.run(l, "sleep 0.5; for s in /proc/[0-9]*/stat; do awk '{print $3}' $s; done | grep -c Z")
        XCTAssertEqual(zombies.out, "0\n", "zombies left in the domain")
        // A command still running when the host shuts the domain down.
        let long = try l.exec(user: "root", command: "sleep 1000")
        try long.waitConnected()
        let children = try String(contentsOfFile: "/proc/\(p.processIdentifier)/task/\(p.processIdentifier)/children", encoding: .utf8)
        guard let agentPid = Int32(children.split(separator: " ").first ?? "") else { return XCTFail("no agent pid in \(children)") }
        XCTAssertEqual(kill(agentPid, SIGTERM), 0)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "the agent (PID 1) should exit 0 on SIGTERM")
        XCTAssertEqual(closed.wait(timeout: .now() + 30), .success, "the link did not see the agent go")
        long.close()
    }
}
