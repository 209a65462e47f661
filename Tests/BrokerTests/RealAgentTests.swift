// The broker with the real odyssey-agent (as plain processes, no root) and
// the real ody-call: the whole path of a call between domains except the
// domains' isolation (IntegrationTests cover that with native domains).
import Domains
import Foundation
import XCTest
@testable import Host

final class RealAgentTests: XCTestCase {
    var w: BrokerWorld!
    var rpc = ""

    override func setUpWithError() throws {
        for exe in ["odyssey-agent", "ody-call"] where !FileManager.default.fileExists(atPath: BrokerBuild.dir + "/" + exe) {
            throw XCTSkip("\(exe) is not built")
        }
        w = try BrokerWorld(policy: basePolicy + "test.Cat * @anyvm @anyvm allow\n")
        try w.create("work", "vault", "dtpl")
        try w.store.setProperty("template_for_dispvms", of: "dtpl", to: "True")
        // Services run as the domain's default user: here, whoever runs the tests.
        let me = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
        for n in ["work", "vault", "dtpl"] { try w.store.setProperty("default_user", of: n, to: me) }
        rpc = w.dir + "/rpc"
        try FileManager.default.createDirectory(atPath: rpc, withIntermediateDirectories: true)
        try service("test.Hello", "#!/bin/sh\necho \"hello to $QREXEC_REMOTE_DOMAIN arg=$1\"\n")
        try service("test.Cat", "#!/bin/sh\nexec cat\n")
        try service("test.Exit", "#!/bin/sh\nexit $1\n")
        try service("test.Hold", "#!/bin/sh\necho holding\nexec cat >/dev/null\n")
        try service("test.Disp", "#!/bin/sh\necho disposable\n")
        w.runtime.realAgentRPCDirs = rpc
    }

    override func tearDown() { w = nil }

    func service(_ name: String, _ script: String) throws {
        try script.write(toFile: rpc + "/" + name, atomically: true, encoding: .utf8)
        chmod(rpc + "/" + name, 0o755)
    }

    /// ody-call in `from`: (status, stdout).
    func odyCall(_ from: String, _ args: [String], stdin: String = "") throws -> (Int32, String) {
        let r = try odyCallWithStderr(from, args, stdin: stdin)
        return (r.0, r.1)
    }

    /// ody-call in `from`: (status, stdout, stderr).
    func odyCallWithStderr(_ from: String, _ args: [String], stdin: String = "") throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: BrokerBuild.dir + "/ody-call")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["ODYSSEY_AGENT_SOCKET"] = w.agentSocket(from)
        p.environment = env
        let i = Pipe(), o = Pipe(), e = Pipe()
        p.standardInput = i
        p.standardOutput = o
        p.standardError = e
        try p.run()
        i.fileHandleForWriting.write(Data(stdin.utf8))
        try i.fileHandleForWriting.close()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        let err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// A disposable refused by [limits]: the real ody-call exits 125 and
    /// prints why (issue 11, finding 4).
    func testDisposableRefusedByALimitExits125WithTheReason() throws {
        var limits = ResourceLimits.defaults
        limits.dispvmsPerDomain = 0
        let fixed = limits
        w.broker.disposables.setLimits { fixed }
        try w.start("work")
        let r = try odyCallWithStderr("work", ["@dispvm:dtpl", "test.Disp"])
        XCTAssertEqual(r.0, 125, w.agentLogs())
        XCTAssertEqual(r.1, "")
        XCTAssertTrue(r.2.contains("work already holds 0 disposables (limit dispvms_per_domain = 0)"), r.2)
        XCTAssertTrue(w.dispNames().isEmpty, "no disposable was made")
    }

    func testCallsBetweenRealAgents() throws {
        try w.start("work")
        // vault is halted: started by the call (autostart).
        var r = try odyCall("work", ["vault", "test.Hello+x"])
        XCTAssertEqual(r.0, 0, w.agentLogs())
        XCTAssertTrue(r.1.hasSuffix("to work arg=x\n"), r.1)
        r = try odyCall("work", ["vault", "test.Cat"], stdin: "through the direct channel")
        XCTAssertEqual(r.1, "through the direct channel")
        XCTAssertEqual(try odyCall("work", ["vault", "test.Exit+5"]).0, 5)
        XCTAssertEqual(try odyCall("work", ["vault", "test.Denied"]).0, 126)
        XCTAssertEqual(try odyCall("work", ["vault", "test.NoAuto+missing"]).0, 127, "allowed, no such service: 127")
        let d = try odyCall("work", ["vault", "qubes.GetDate"])   // redirected to dom0
        XCTAssertEqual(d.0, 0)
        XCTAssertTrue(d.1.hasPrefix("20"), d.1)
    }

    func testDisposableWithRealAgents() throws {
        try w.start("work")
        let r = try odyCall("work", ["@dispvm:dtpl", "test.Disp"])
        XCTAssertEqual(r.0, 0, w.agentLogs())
        XCTAssertEqual(r.1, "disposable\n")
        eventually(10, "destroyed") { w.dispNames().isEmpty && w.broker.disposables.alive.isEmpty }
        // The caller killed mid-call: the disposable goes too.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: BrokerBuild.dir + "/ody-call")
        p.arguments = ["@dispvm:dtpl", "test.Hold"]
        var env = ProcessInfo.processInfo.environment
        env["ODYSSEY_AGENT_SOCKET"] = w.agentSocket("work")
        p.environment = env
        let i = Pipe()
        p.standardInput = i
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        eventually(10, "disposable running") { w.dispNames().count == 1 }
        let name = w.dispNames().first ?? ""
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        eventually(10, "destroyed after the caller died") { w.dispNames().isEmpty }
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.volumes.domainDir(name)))
        try? i.fileHandleForWriting.close()
    }
}

extension BrokerWorld {
    func agentLogs() -> String {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("agent-") }
            .map { "\($0):\n" + ((try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) ?? "") }.joined(separator: "\n")
    }
}
