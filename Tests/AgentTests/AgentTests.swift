// The agent and the host's AgentLink end to end, over the real socket vchan.
import Foundation
import Host
import Qrexec
import VchanSocketCore
import XCTest

final class AgentTests: XCTestCase {
    func testReadyHandshake() throws {
        let f = try AgentFixture()
        let l = try f.link("work")
        XCTAssertEqual(l.state, .waiting)
        try f.startAgent("work")
        XCTAssertEqual(try l.waitReady(timeoutMs: 20_000), QrexecVersion.current)
        XCTAssertEqual(l.state, .ready(version: QrexecVersion.current))
    }

    /// The daemon restarts (its link goes away) and listens again: the agent reconnects.
    func testAgentReconnectsWhenTheHostListensAgain() throws {
        let f = try AgentFixture()
        let first = try f.readyDomain("work")
        let gone = DispatchSemaphore(value: 0)
        first.close()
        for _ in 0..<1000 { if case .closed = first.state { gone.signal(); break }; usleep(5_000) }
        XCTAssertEqual(gone.wait(timeout: .now() + 1), .success)
        let second = try f.link("work")
        XCTAssertEqual(try second.waitReady(timeoutMs: 20_000), QrexecVersion.current)
        XCTAssertEqual(try f.run(second, "echo again").out, "again\n")
    }

    func testEchoStdout() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let r = try f.run(l, "echo hi")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.out, "hi\n")
        XCTAssertEqual(r.err, "")
    }

    func testStderr() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let r = try f.run(l, "echo out; echo oops >&2")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.out, "out\n")
        XCTAssertEqual(r.err, "oops\n")
    }

    func testExitCode() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        XCTAssertEqual(try f.run(l, "exit 3").status, 3)
        XCTAssertEqual(try f.run(l, "true").status, 0)
        XCTAssertEqual(try f.run(l, "kill -9 $$").status, 128 + 9)
        XCTAssertEqual(try f.run(l, "no-such-command-here").status, 127)
        // Every session's port comes back once both ends are done.
        var free = false
        for _ in 0..<400 where !free { free = l.openPorts.isEmpty; if !free { usleep(10_000) } }
        XCTAssertEqual(l.openPorts, [])
    }

    func testEnvironmentAndUser() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let r = try f.run(l, "echo \"$USER:$(id -u)\"; case \"$PATH\" in */usr/bin*) echo path-ok;; esac; test -n \"$HOME\" && echo home-ok")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.out, "\(AgentFixture.user):\(geteuid())\npath-ok\nhome-ok\n")
        // As root the agent switches user: ids, groups and HOME are the user's own.
        if geteuid() == 0, let pw = getpwnam("nobody") {
            let n = try f.run(l, "id -u; id -g; id -G; echo $USER $HOME", user: "nobody")
            XCTAssertEqual(n.status, 0, n.err)
            let lines = n.out.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "\(pw.pointee.pw_uid)")
            XCTAssertEqual(lines.dropFirst().first, "\(pw.pointee.pw_gid)")
            XCTAssertFalse(lines.count > 2 && lines[2].split(separator: " ").contains("0"), "root's group kept: \(n.out)")
            XCTAssertEqual(lines.last, "nobody \(String(cString: pw.pointee.pw_dir))")
        }
        let bad = try f.run(l, "true", user: "no-such-user-xyz")
        XCTAssertEqual(bad.status, 125)
        XCTAssertTrue(bad.err.contains("no-such-user-xyz"), bad.err)
    }

    func testStdinRoundTripWithEOF() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let r = try f.run(l, "cat", stdin: Data("hello\nworld".utf8))
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.out, "hello\nworld")
        // No stdin at all: EOF at once, cat ends.
        let s = try f.run(l, "cat; echo done")
        XCTAssertEqual(s.out, "done\n")
        // wc sees exactly the bytes sent, then EOF.
        let w = try f.run(l, "wc -c", stdin: Data(repeating: 65, count: 100_000))
        XCTAssertEqual(w.out.trimmingCharacters(in: .whitespacesAndNewlines), "100000")
    }

    func testTenMiBThroughCatBothWays() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        var rng = SplitMix(seed: 42)
        var data = Data(count: 10 << 20)
        data.withUnsafeMutableBytes { raw in
            let p = raw.bindMemory(to: UInt64.self)
            for i in 0..<p.count { p[i] = rng.next() }
        }
        let r = try f.run(l, "cat", stdin: data)
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout.count, data.count)
        XCTAssertTrue(r.stdout == data, "10 MiB came back different")
        // And a command writing to stdout and stderr at once while reading stdin.
        let t = try f.run(l, "tee /dev/stderr", stdin: data)
        XCTAssertEqual(t.status, 0)
        XCTAssertTrue(t.stdout == data && t.stderr == data)
    }

    func testJustExecAndConcurrentSessions() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let s = try l.exec(user: AgentFixture.user, command: "sleep 0", justExec: true)
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        XCTAssertEqual(try s.run(stdin: nil, stdout: null, stderr: null), 0)
        s.close()
        // Several commands at once: one slow command does not block the others.
        let slow = try l.exec(user: AgentFixture.user, command: "read x; echo $x")
        try slow.waitConnected()
        for i in 0..<8 { XCTAssertEqual(try f.run(l, "echo \(i)").out, "\(i)\n") }
        let inFD = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { inFD.deallocate() }
        XCTAssertEqual(pipe(inFD), 0)
        _ = write(inFD[1], "late\n", 5); close(inFD[1])
        let outPath = f.dir + "/slow-out"
        let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertEqual(try slow.run(stdin: inFD[0], stdout: out, stderr: null), 0)
        close(out); close(inFD[0])
        XCTAssertEqual(try String(contentsOfFile: outPath, encoding: .utf8), "late\n")
    }

    func testCallerHangupStopsCommand() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let started = f.dir + "/started", marker = f.dir + "/hup-marker"
        let s = try l.exec(user: AgentFixture.user,
                           command: "trap 'echo hup > \(marker); exit 0' HUP; echo > \(started); while :; do sleep 0.05; done")
        try s.waitConnected()
        var stream = QrexecStream(fd: try s.dataFD(), incoming: .serviceToClient)
        try stream.handshake()
        var seen = false
        for _ in 0..<400 where !seen { usleep(25_000); seen = FileManager.default.fileExists(atPath: started) }
        XCTAssertTrue(seen, "the command did not start")
        s.close()   // the caller goes away without waiting for the exit code
        seen = false
        for _ in 0..<400 where !seen { usleep(25_000); seen = FileManager.default.fileExists(atPath: marker) }
        XCTAssertTrue(seen, "the command did not get SIGHUP when its caller left")
        XCTAssertEqual(try f.run(l, "echo still-alive").out, "still-alive\n")
    }

    /// The command starts beside the caller's HELLO (Session.run); a caller
    /// that connects and never says HELLO gets the agent's HELLO and nothing
    /// else, and its command is killed when the agent stops waiting (10 s).
    func testCallerWithoutHelloGetsTheCommandKilled() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let started = f.dir + "/started-no-hello", pidFile = f.dir + "/pid-no-hello"
        let s = try l.exec(user: AgentFixture.user, command: "echo $$ > \(pidFile); echo > \(started); echo out; exec sleep 60")
        try s.waitConnected()
        let fd = try s.dataFD()
        var seen = false
        for _ in 0..<400 where !seen { usleep(25_000); seen = FileManager.default.fileExists(atPath: started) }
        XCTAssertTrue(seen, "the command did not start before the caller's HELLO")
        let pid = try XCTUnwrap(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // What the agent sent: its HELLO only (12 bytes), then, after the wait, the end of the channel.
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 500) > 0 else { continue }
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            got += buf[0..<n]
        }
        XCTAssertEqual(got.count, MsgHeader.size + 4, "the agent sent more than its HELLO to a caller that never said HELLO: \(got)")
        var gone = false
        for _ in 0..<200 where !gone { gone = kill(pid, 0) != 0 && errno == ESRCH; if !gone { usleep(25_000) } }
        XCTAssertTrue(gone, "the command (pid \(pid)) still runs after its caller never said HELLO")
        s.close()
        XCTAssertEqual(try f.run(l, "echo still-alive").out, "still-alive\n")
    }

    func testExecRefusedBeforeReadyAndBadUserNames() throws {
        let f = try AgentFixture()
        let l = try f.link("work")
        XCTAssertThrowsError(try l.exec(user: "root", command: "true"))
        try f.startAgent("work")
        try l.waitReady(timeoutMs: 20_000)
        XCTAssertThrowsError(try l.exec(user: "", command: "true"))
        XCTAssertThrowsError(try l.exec(user: "a:b", command: "true"))
        XCTAssertThrowsError(try l.exec(user: "root", command: ""))
    }

    /// Issue 5's direct channels: the data channel is one end of a socketpair
    /// passed to the agent with SCM_RIGHTS; the host never touches the data.
    func testExecWithPassedDataChannel() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        var sp: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sp), 0)
        let port = try l.exec(user: AgentFixture.user, command: "cat; echo via-fd", connectDomain: 7, passing: sp[1])
        close(sp[1])
        XCTAssertGreaterThanOrEqual(port, AgentLink.firstDataPort)
        let outPath = f.dir + "/fd-out"
        let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let inPath = f.dir + "/fd-in"
        _ = FileManager.default.createFile(atPath: inPath, contents: Data("peer data\n".utf8))
        let inFD = open(inPath, O_RDONLY)
        let null = open("/dev/null", O_WRONLY)
        XCTAssertEqual(try DataClient.run(channel: sp[0], stdin: inFD, stdout: out, stderr: null), 0)
        close(sp[0]); close(out); close(inFD); close(null)
        XCTAssertEqual(try String(contentsOfFile: outPath, encoding: .utf8), "peer data\nvia-fd\n")
        // The agent reports the session over: the port is free again.
        var free = false
        for _ in 0..<400 where !free { free = !l.openPorts.contains(port); if !free { usleep(10_000) } }
        XCTAssertTrue(free, "port \(port) still held after MSG_CONNECTION_TERMINATED")
    }

    /// Agent process start to "ready" (HELLO crossed), 10 starts; printed, not asserted.
    func testAgentStartToReadyTiming() throws {
        let f = try AgentFixture()
        var ns: [UInt64] = []
        for i in 0..<10 {
            let l = try f.link("start\(i)")
            let t0 = DispatchTime.now().uptimeNanoseconds
            try f.startAgent("start\(i)")
            try l.waitReady(timeoutMs: 20_000)
            ns.append(DispatchTime.now().uptimeNanoseconds - t0)
        }
        ns.sort()
        print(String(format: "agent start to ready over 10 starts: median %.3f ms, min %.3f ms", Double(ns[5]) / 1e6, Double(ns[0]) / 1e6))
    }

    /// Unknown flag bits and bad endpoints are refused by the plugin, not ignored.
    func testVchanRefusesUnknownFlags() throws {
        let f = try AgentFixture()
        XCTAssertThrowsError(try f.vchan.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 600), flags: 1 << 20)) { e in
            XCTAssertEqual((e as? OdysseyError)?.code, .invalid)
        }
        XCTAssertThrowsError(try f.vchan.clientInit(VchanEndpoint(local: "dom0", remote: "work", port: 70000)))
        XCTAssertEqual(f.vchan.factory.name, "socket")
        XCTAssertEqual(CapabilityNames.names(kind: .vchan, bits: f.vchan.factory.capabilities), ["fd-passing"])
    }

    /// Median of 100 `true` round trips (exec to exit code); printed, not asserted.
    func testExecTrueRoundTripTiming() throws {
        let f = try AgentFixture()
        let l = try f.readyDomain("work")
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        for _ in 0..<5 { _ = try l.run(user: AgentFixture.user, command: "true", stdin: nil, stdout: null, stderr: null) }
        var ns: [UInt64] = []
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            XCTAssertEqual(try l.run(user: AgentFixture.user, command: "true", stdin: nil, stdout: null, stderr: null), 0)
            ns.append(DispatchTime.now().uptimeNanoseconds - t0)
        }
        ns.sort()
        print(String(format: "exec-true round trip over 100 runs: median %.3f ms, p90 %.3f ms, min %.3f ms",
                     Double(ns[50]) / 1e6, Double(ns[90]) / 1e6, Double(ns[0]) / 1e6))
    }
}

/// Deterministic test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
