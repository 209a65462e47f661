// Service calls between two domains, end to end: two real agents ("work" the
// caller, "vault" the target, each with its own channel directory and local
// socket), the real `ody-call` inside "work", and a minimal broker here built
// on AgentLink's onTrigger (no policy engine: the service name decides),
// doing what the host's broker does: a socketpair per call, one end to the
// target with MSG_EXEC_CMDLINE "user:QUBESRPC SERVICE+ARG SOURCE", the other
// to the caller with MSG_SERVICE_CONNECT.
import Foundation
import Host
import Qrexec
import VchanSocketCore
import XCTest

final class ServiceCallTests: XCTestCase {
    func testStdoutStderrExitAndStdinRoundTrip() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Echo", "#!/bin/sh\ncat\n")
        try w.service("test.Err", "#!/bin/sh\necho out; echo err >&2; exit 7\n")
        let e = try w.call(["vault", "test.Echo"], stdin: Data("hello\nworld".utf8))
        XCTAssertEqual(e.status, 0, e.err)
        XCTAssertEqual(e.out, "hello\nworld")
        let r = try w.call(["vault", "test.Err"])
        XCTAssertEqual(r.status, 7)
        XCTAssertEqual(r.out, "out\n")
        XCTAssertEqual(r.err, "err\n")
        // The host saw the caller's domain as the source (from the channel),
        // and every request had its own agent-made ident.
        let seen = w.broker.seen
        XCTAssertEqual(seen.map(\.source), ["work", "work"])
        XCTAssertEqual(seen.map(\.target), ["vault", "vault"])
        XCTAssertEqual(seen.map(\.serviceName), ["test.Echo", "test.Err"])
        XCTAssertEqual(Set(seen.map(\.ident)).count, 2)
        XCTAssertTrue(seen.allSatisfy { $0.ident.hasPrefix("call-") }, "\(seen)")
    }

    /// Control characters from a service are kept for files and pipes and
    /// replaced on the way to a terminal (forced here with the option).
    func testEscapeCharactersFiltered() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Esc", "#!/bin/sh\nprintf 'a\\033[31mred\\007\\tb\\r\\n\\303\\251'; printf 'e\\033]0;title\\007' >&2\n")
        let raw = try w.call(["vault", "test.Esc"])
        XCTAssertEqual(raw.stdout, Data([0x61, 0x1b] + Array("[31mred".utf8) + [0x07, 0x09, 0x62, 0x0d, 0x0a, 0xc3, 0xa9]))
        XCTAssertEqual(raw.stderr, Data([0x65, 0x1b] + Array("]0;title".utf8) + [0x07]))
        let f = try w.call(["--filter-escape-chars", "vault", "test.Esc"])
        XCTAssertEqual(f.status, 0)
        XCTAssertEqual(f.out, "a_[31mred_\tb\r\né")
        XCTAssertEqual(f.err, "e_]0;title_")
        // Per stream, as add-on commands call it: binary stdout, filtered stderr.
        let split = try w.call(["--no-filter-escape-chars-stdout", "--filter-escape-chars-stderr", "vault", "test.Esc"])
        XCTAssertEqual(split.stdout, raw.stdout)
        XCTAssertEqual(split.err, "e_]0;title_")
    }

    func testSignalStatusAndEarlyStdoutClose() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Kill", "#!/bin/sh\nkill -9 $$\n")
        try w.service("test.Close", "#!/bin/sh\necho before; exec >&-; sleep 0.1; exit 3\n")
        XCTAssertEqual(try w.call(["vault", "test.Kill"]).status, 128 + 9)
        let c = try w.call(["vault", "test.Close"])
        XCTAssertEqual(c.status, 3)
        XCTAssertEqual(c.out, "before\n")
    }

    func testServicePlusArgumentBeforeServiceAndDirectoryOrder() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Arg", "#!/bin/sh\necho generic \"$QREXEC_SERVICE_ARGUMENT\"\n")
        try w.service("test.Arg+special", "#!/bin/sh\necho specific\n")
        // A later directory only matters when no earlier one has the name:
        // SERVICE+ARG anywhere wins over SERVICE anywhere.
        try w.service("test.Arg+second", "#!/bin/sh\necho from-second-dir\n", dir: w.rpcDir2)
        try w.service("test.Arg", "#!/bin/sh\necho shadowed\n", dir: w.rpcDir2)
        XCTAssertEqual(try w.call(["vault", "test.Arg+special"]).out, "specific\n")
        XCTAssertEqual(try w.call(["vault", "test.Arg+other"]).out, "generic other\n")
        XCTAssertEqual(try w.call(["vault", "test.Arg"]).out, "generic \n")
        XCTAssertEqual(try w.call(["vault", "test.Arg+"]).out, "generic \n")
        XCTAssertEqual(try w.call(["vault", "test.Arg+second"]).out, "from-second-dir\n")
        // SERVICE+ARG longer than 255 bytes: only SERVICE is looked up.
        let long = String(repeating: "a", count: 300)
        let l = try w.call(["vault", "test.Arg+" + long])
        XCTAssertEqual(l.status, 0, l.err)
        XCTAssertEqual(l.out, "generic \(long)\n")
    }

    func testEnvironment() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        let script = """
        #!/bin/sh
        printf '%s\\n' "remote=$QREXEC_REMOTE_DOMAIN" "full=$QREXEC_SERVICE_FULL_NAME" \
          "arg=${QREXEC_SERVICE_ARGUMENT-unset}" "type=${QREXEC_REQUESTED_TARGET_TYPE-unset}" \
          "target=${QREXEC_REQUESTED_TARGET-unset}" "agent=${QREXEC_AGENT_PID:+set}" "user=$USER" "argc=$#"
        """
        try w.service("test.Env", script)
        try w.service("test.EnvTarget", script)
        let a = try w.call(["vault", "test.Env+abc"])
        XCTAssertEqual(a.status, 0, a.err)
        XCTAssertEqual(a.out, "remote=work\nfull=test.Env+abc\narg=abc\ntype=unset\ntarget=unset\nagent=set\nuser=\(AgentFixture.user)\nargc=1\n")
        let b = try w.call(["vault", "test.Env"])
        XCTAssertEqual(b.out, "remote=work\nfull=test.Env\narg=unset\ntype=unset\ntarget=unset\nagent=set\nuser=\(AgentFixture.user)\nargc=0\n")
        // The host passes the requested target: QREXEC_REQUESTED_TARGET_TYPE/_TARGET.
        let c = try w.call(["vault", "test.EnvTarget+x"])
        XCTAssertEqual(c.out, "remote=work\nfull=test.EnvTarget+x\narg=x\ntype=name\ntarget=vault\nagent=set\nuser=\(AgentFixture.user)\nargc=1\n")
    }

    /// As in Qubes R4.1+, a non-empty argument is the service's $1 (so Qubes
    /// scripts run unmodified) and QREXEC_SERVICE_ARGUMENT; it is never
    /// evaluated by a shell, whatever it contains.
    func testArgumentIsFirstParameterAndNeverEvaluated() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Argv", "#!/bin/sh\nprintf '[%s]' \"$0\" \"$@\"; echo; echo \"$QREXEC_SERVICE_ARGUMENT\"\n")
        let a = try w.call(["vault", "test.Argv+-rf"])
        XCTAssertEqual(a.status, 0, a.err)
        XCTAssertEqual(a.out, "[\(w.rpcDir)/test.Argv][-rf]\n-rf\n")
        // A program used directly as a service sees the argument as its first
        // word, as in Qubes: `-n` reaches /bin/echo (so such services must
        // guard against option injection, as the Qubes docs say).
        try FileManager.default.createSymbolicLink(atPath: w.rpcDir + "/test.RawEcho", withDestinationPath: "/bin/echo")
        let e = try w.call(["vault", "test.RawEcho+-n"])
        XCTAssertEqual(e.status, 0, e.err)
        XCTAssertEqual(e.out, "")
        // Characters a shell would act on arrive as '_' (sanitised on the
        // way out of the caller) and are never evaluated.
        let s = try w.call(["vault", "test.Argv+$(touch /tmp/odyssey-pwned)`id`;x"])
        XCTAssertEqual(s.out, "[\(w.rpcDir)/test.Argv][__touch__tmp_odyssey-pwned__id__x]\n__touch__tmp_odyssey-pwned__id__x\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/odyssey-pwned"))
    }

    func testSocketServiceGetsTheHeaderFirst() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        let path = w.rpcDir + "/test.Sock"
        let listener = try UnixListener(path: path)
        let served = DispatchSemaphore(value: 0)
        let header = LockedBox<String>("")
        Thread.detachNewThread {
            defer { served.signal() }
            guard let c = listener.acceptOne() else { return }
            defer { close(c) }
            // Everything up to the first NUL is the descriptor; then the data.
            var head: [UInt8] = []
            var b: UInt8 = 0
            while read(c, &b, 1) == 1 && b != 0 { head.append(b) }
            header.set(String(decoding: head, as: UTF8.self))
            var input: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(c, &buf, buf.count)
                if n <= 0 { break }
                input += buf[0..<n]
            }
            let reply = Array("got [\(String(decoding: input, as: UTF8.self))]\n".utf8)
            _ = reply.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
        }
        let r = try w.call(["vault", "test.Sock+xyz"], stdin: Data("payload".utf8))
        XCTAssertEqual(served.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(header.get(), "test.Sock+xyz work")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "got [payload]\n")
        listener.close()
    }

    func testNotFound127NotExecutable125NoShebangRuns() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        let r = try w.call(["vault", "test.Missing+arg"])
        XCTAssertEqual(r.status, 127)
        XCTAssertTrue(r.err.contains("test.Missing+arg not found"), r.err)
        try w.service("test.Plain", "echo not executable\n", mode: 0o644)
        let p = try w.call(["vault", "test.Plain"])
        XCTAssertEqual(p.status, 125)
        XCTAssertTrue(p.err.contains("test.Plain cannot be run") && !p.err.contains(w.rpcDir), p.err)
        XCTAssertTrue(w.agentLog("vault").contains("neither an executable file nor a socket"))
        XCTAssertFalse(r.err.contains(w.rpcDir), r.err)
        // A script without "#!" runs with /bin/sh, as a shell would run it.
        try w.service("test.NoShebang", "echo no-shebang \"$QREXEC_SERVICE_ARGUMENT\"\n")
        XCTAssertEqual(try w.call(["vault", "test.NoShebang+a"]).out, "no-shebang a\n")
        // A directory is not a service.
        try FileManager.default.createDirectory(atPath: w.rpcDir + "/test.Dir", withIntermediateDirectories: true)
        XCTAssertEqual(try w.call(["vault", "test.Dir"]).status, 125)
    }

    func testRefused126AndUnknownTarget() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Echo", "#!/bin/sh\ncat\n")
        let r = try w.call(["vault", "test.Refused"], stdin: Data("secret".utf8))
        XCTAssertEqual(r.status, 126)
        XCTAssertEqual(r.out, "")
        XCTAssertTrue(r.err.contains("refused"), r.err)
        // The test broker refuses targets it does not know.
        XCTAssertEqual(try w.call(["no-such-domain", "test.Echo"]).status, 126)
    }

    func testUsageHelpAndQrexecFailures() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        let h = try w.call(["--help"])
        XCTAssertEqual(h.status, 0)
        XCTAssertTrue(h.out.contains("usage: ody-call") && h.out.contains("Examples:") && h.out.contains("126"), h.out)
        XCTAssertEqual(try w.call(["vault"]).status, 2)
        XCTAssertEqual(try w.call(["--bogus", "vault", "x"]).status, 2)
        // Names the host would refuse never leave the domain.
        let plus = try w.call(["vault", "+x"])
        XCTAssertEqual(plus.status, 125)
        XCTAssertTrue(plus.err.contains("starts with '+'"), plus.err)
        XCTAssertEqual(try w.call(["", "test.Echo"]).status, 125)
        // No agent listening.
        let n = try w.call(["vault", "test.Echo"], socket: w.f.dir + "/nobody.sock")
        XCTAssertEqual(n.status, 125)
        XCTAssertTrue(n.err.contains("cannot reach the agent"), n.err)
    }

    func testLocalProgram() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Upper", "#!/bin/sh\ntr a-z A-Z\n")
        // The local program's stdout feeds the service, the service's stdout
        // feeds the program; ody-call exits with the program's status.
        let r = try w.call(["vault", "test.Upper", "--", "/bin/sh", "-c", "echo ping; exec >&-; read x; echo \"got $x\" >&2; exit 5"])
        XCTAssertEqual(r.status, 5, r.err)
        XCTAssertEqual(r.out, "")
        XCTAssertEqual(r.err, "got PING\n")
        // qrexec-client-vm's form without "--".
        let s = try w.call(["vault", "test.Upper", "/bin/sh", "-c", "echo a; exec >&-; cat >&2"])
        XCTAssertEqual(s.status, 0)
        XCTAssertEqual(s.err, "A\n")
        // Not started when the call is refused.
        let marker = w.f.dir + "/local-ran"
        XCTAssertEqual(try w.call(["vault", "test.Refused", "--", "/bin/sh", "-c", "touch \(marker)"]).status, 126)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    /// 100 MiB through a service both ways (cat), with EOF: the service ends
    /// only because the caller's EOF arrives; then 100 MiB only out and only in.
    func testHundredMiBBothWaysWithEOF() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Cat", "#!/bin/sh\nexec cat\n")
        try w.service("test.Count", "#!/bin/sh\nwc -c\n")
        try w.service("test.Produce", "#!/bin/sh\nhead -c 104857600 /dev/zero\n")
        let size = 100 << 20
        var rng = SplitMix(seed: 7)
        var data = Data(count: size)
        data.withUnsafeMutableBytes { raw in
            let p = raw.bindMemory(to: UInt64.self)
            for i in 0..<p.count { p[i] = rng.next() }
        }
        let inPath = w.f.dir + "/big-in"
        try data.write(to: URL(fileURLWithPath: inPath))
        defer { unlink(inPath) }
        let t0 = Date()
        let r = try w.call(["vault", "test.Cat"], stdinFile: inPath, timeout: 300)
        let secs = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.stdout.count, size)
        XCTAssertTrue(r.stdout == data, "100 MiB came back different")
        print(String(format: "100 MiB through a service and back (ody-call, cat): %.2f s, %.0f MiB/s each way", secs, 100 / secs))
        let c = try w.call(["vault", "test.Count"], stdinFile: inPath, timeout: 300)
        XCTAssertEqual(c.out.trimmingCharacters(in: .whitespacesAndNewlines), "\(size)")
        let p = try w.call(["vault", "test.Produce"], timeout: 300)
        XCTAssertEqual(p.status, 0)
        XCTAssertEqual(p.stdout.count, size)
        XCTAssertTrue(p.stdout.allSatisfy { $0 == 0 })
    }

    /// A SERVICE_CONNECT that does not carry one stream socket fails that
    /// call (125) and nothing else: a call in flight finishes, the control
    /// channel stays up, the next call works.
    func testMalformedServiceConnectClosesOnlyThatCall() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.Slow", "#!/bin/sh\nread x; echo \"slow $x\"\n")
        try w.service("test.Echo", "#!/bin/sh\ncat\n")
        // A call in flight (in-process client: Foundation's Process is not
        // used from two threads at once): it waits for stdin that comes later.
        let (a, b) = TestBroker.socketPair(), (c, d) = TestBroker.socketPair()
        let inPipe = [a, b], outPipe = [c, d]
        let writer = inPipe[1]
        let slowDone = DispatchSemaphore(value: 0)
        let slowStatus = LockedBox<Int32?>(nil)
        let (slowIn, slowOut) = (inPipe[0], outPipe[1])
        Thread.detachNewThread {
            slowStatus.set(try? w.callInProcess(target: "vault", service: "test.Slow", stdin: slowIn, stdout: slowOut, stderr: slowOut))
            close(slowOut)
            slowDone.signal()
        }
        for _ in 0..<2000 where w.broker.seen.isEmpty { usleep(5_000) }
        for (service, words) in [("test.NoFD", "0 descriptors"), ("test.PipeFD", "not a stream socket"), ("test.TwoFDs", "2 descriptors")] {
            let r = try w.call(["vault", service])
            XCTAssertEqual(r.status, 125, "\(service): \(r.err)")
            XCTAssertTrue(r.err.contains(words), "\(service): \(r.err)")
        }
        // An ident nobody waits for is ignored; the real answer still arrives.
        try w.service("test.UnknownIdent", "#!/bin/sh\ncat\n")
        let u = try w.call(["vault", "test.UnknownIdent"], stdin: Data("still-here".utf8))
        XCTAssertEqual(u.status, 0, u.err)
        XCTAssertEqual(u.out, "still-here")
        XCTAssertEqual(w.work.state, .ready(version: QrexecVersion.current))
        XCTAssertEqual(try w.call(["vault", "test.Echo"], stdin: Data("after".utf8)).out, "after")
        _ = "go\n".withCString { write(writer, $0, 3) }
        close(writer)
        XCTAssertEqual(slowDone.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(slowStatus.get(), 0)
        var out = [UInt8](repeating: 0, count: 100)
        let n = read(outPipe[0], &out, out.count)
        XCTAssertEqual(String(decoding: out.prefix(max(0, n)), as: UTF8.self), "slow go\n")
        close(inPipe[0]); close(outPipe[0])
        XCTAssertFalse(w.agentLog("work").contains("control channel closed"), w.agentLog("work"))
    }

    /// The host's control channel goes away while a call waits for its
    /// answer: the caller gets 125 at once instead of waiting forever.
    func testWaitingCallFailsWhenTheControlChannelCloses() throws {
        let w = try CallWorld(decide: { _ in .hold })
        defer { w.shutdown() }
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox<RunResult?>(nil)
        Thread.detachNewThread {
            result.set(try? w.call(["vault", "test.Anything"]))
            done.signal()
        }
        for _ in 0..<2000 where w.broker.seen.isEmpty { usleep(5_000) }
        XCTAssertEqual(w.broker.seen.count, 1)
        XCTAssertEqual(done.wait(timeout: .now() + 0.2), .timedOut, "the call did not wait for the host's answer")
        w.work.close()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(result.get()?.status, 125)
        XCTAssertTrue(result.get()?.err.contains("control channel to the host closed") == true, result.get()?.err ?? "")
    }

    /// 100 calls of a trivial service, median and p90 printed (not asserted):
    /// in-process client (the call path alone) and through the ody-call process.
    func testCallRoundTripTiming() throws {
        let w = try CallWorld()
        defer { w.shutdown() }
        try w.service("test.True", "#!/bin/sh\nexit 0\n")
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        for _ in 0..<5 { XCTAssertEqual(try w.callInProcess(target: "vault", service: "test.True", stdout: null, stderr: null), 0) }
        var ns: [UInt64] = []
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            XCTAssertEqual(try w.callInProcess(target: "vault", service: "test.True", stdout: null, stderr: null), 0)
            ns.append(DispatchTime.now().uptimeNanoseconds - t0)
        }
        ns.sort()
        print(String(format: "service call round trip (in-process client, /bin/sh service) over 100 calls: median %.3f ms, p90 %.3f ms, p99 %.3f ms, min %.3f ms",
                     Double(ns[50]) / 1e6, Double(ns[90]) / 1e6, Double(ns[99]) / 1e6, Double(ns[0]) / 1e6))
        var ps: [UInt64] = []
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            XCTAssertEqual(try w.call(["vault", "test.True"]).status, 0)
            ps.append(DispatchTime.now().uptimeNanoseconds - t0)
        }
        ps.sort()
        print(String(format: "service call round trip (ody-call started by Foundation's Process) over 100 calls: median %.3f ms, p90 %.3f ms, p99 %.3f ms, min %.3f ms",
                     Double(ps[50]) / 1e6, Double(ps[90]) / 1e6, Double(ps[99]) / 1e6, Double(ps[0]) / 1e6))
        // As a script in a domain would: 100 ody-calls from one shell loop
        // (Foundation's Process start is not part of it), mean per call.
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", "i=0; while [ $i -lt 100 ]; do \"$0\" vault test.True </dev/null || exit 9; i=$((i+1)); done", w.odyCall]
        var env = ProcessInfo.processInfo.environment
        env["ODYSSEY_AGENT_SOCKET"] = w.agentSocket("work")
        sh.environment = env
        let t0 = DispatchTime.now().uptimeNanoseconds
        try sh.run()
        sh.waitUntilExit()
        let total = DispatchTime.now().uptimeNanoseconds - t0
        XCTAssertEqual(sh.terminationStatus, 0)
        print(String(format: "service call round trip (ody-call in a shell loop) over 100 calls: mean %.3f ms", Double(total) / 1e8))
    }
}
