// The real agent and the host's AgentLink over the virtio-serial vchan: the
// agent (ODYSSEY_VCHAN=virtio-serial:PATH) runs the guest side of StreamMux,
// the host loads vchan-virtio-serial through its Backends, and a relay plays
// QEMU: it listens on the domain's chardev socket (the host connects, as to
// QEMU's) and on a second socket standing in for the guest's port, and
// copies bytes between one connection of each. No VM is needed for this
// tier; the VM tier (the lead's) runs the same agent on a real port.
import Foundation
import Host
import Logging
import Qrexec
import XCTest

/// QEMU's part: host connection <-> guest port, bytes copied both ways. When
/// either side goes, both are closed and the next pair is taken (a new host
/// connection, as after an odysseyd restart; the agent reopens its "port").
final class ChardevRelay: @unchecked Sendable {
    let hostListen: Int32, guestListen: Int32
    private var stopped = false
    private let lock = NSLock()

    init(hostPath: String, guestPath: String) throws {
        hostListen = try Self.listen(hostPath)
        guestListen = try Self.listen(guestPath)
        Thread.detachNewThread { [self] in run() }
    }

    static func listen(_ path: String) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        unlink(path)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0, Glibc.listen(fd, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        return fd
    }

    func stop() { lock.lock(); stopped = true; lock.unlock() }
    var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    private func run() {
        while !isStopped {
            var h: Int32 = -1, g: Int32 = -1
            while (h < 0 || g < 0) && !isStopped {
                var p = [pollfd(fd: h < 0 ? hostListen : -1, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: g < 0 ? guestListen : -1, events: Int16(POLLIN), revents: 0)]
                if poll(&p, 2, 200) <= 0 { continue }
                if p[0].revents != 0 { h = accept(hostListen, nil, nil) }
                if p[1].revents != 0 { g = accept(guestListen, nil, nil) }
            }
            if h >= 0 && g >= 0 { pump(h, g) }
            if h >= 0 { close(h) }
            if g >= 0 { close(g) }
        }
        close(hostListen); close(guestListen)
    }

    private func pump(_ a: Int32, _ b: Int32) {
        var buf = [UInt8](repeating: 0, count: 256 * 1024)
        while !isStopped {
            var p = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
            if poll(&p, 2, 200) <= 0 { continue }
            for (from, to, rev) in [(a, b, p[0].revents), (b, a, p[1].revents)] where rev != 0 {
                let n = buf.withUnsafeMutableBytes { read(from, $0.baseAddress!, $0.count) }
                if n <= 0 { return }
                var off = 0
                while off < n {
                    let w = buf.withUnsafeBytes { send(to, $0.baseAddress! + off, n - off, Int32(MSG_NOSIGNAL)) }
                    if w <= 0 { return }
                    off += w
                }
            }
        }
    }
}

final class AgentMuxTests: XCTestCase {
    final class Fixture: @unchecked Sendable {
        let dir: String
        let backends: Backends
        let vchan: VchanBackend
        let logger: Logger
        var relays: [ChardevRelay] = []
        var agents: [Process] = []

        init() throws {
            let fm = FileManager.default
            let plugin = AgentBuild.dir + "/libvchan-virtio-serial.so"
            for p in [AgentBuild.agent, plugin] where !fm.fileExists(atPath: p) {
                XCTFail("\(p) is missing: build first (`swift build`)")
                throw XCTSkip("not built")
            }
            dir = "/tmp/oam-" + String(UUID().uuidString.prefix(8))
            try fm.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
            try fm.copyItem(atPath: plugin, toPath: dir + "/plugins/libvchan-virtio-serial.so")
            try fm.copyItem(atPath: AgentBuild.repoRoot + "/Plugins/vchan-virtio-serial/vchan-virtio-serial.json",
                            toPath: dir + "/plugins/vchan-virtio-serial.json")
            let text = """
            plugin_dirs = ["\(dir)/plugins"]
            state_dir = "\(dir)/state"
            admin_socket = "\(dir)/admin.sock"

            [vchan]
            default = "virtio-serial"

            [vchan.virtio-serial]
            socket_dir = "\(dir)/vport"
            """
            let config = try OdysseyConfig.parse(text, path: dir + "/odyssey.toml")
            var logger = Logger(label: "agent-mux-tests")
            logger.logLevel = .critical
            self.logger = logger
            backends = Backends.load(config: config, logger: logger, events: EventBus())
            vchan = try backends.vchan()
        }

        /// The domain's "VM": its chardev relay and its agent.
        func startDomain(_ domain: String) throws {
            try FileManager.default.createDirectory(atPath: "\(dir)/vport/\(domain)", withIntermediateDirectories: true)
            relays.append(try ChardevRelay(hostPath: "\(dir)/vport/\(domain)/vchan.sock", guestPath: "\(dir)/port-\(domain)"))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: AgentBuild.agent)
            var env = ProcessInfo.processInfo.environment
            env["ODYSSEY_VCHAN"] = "virtio-serial:\(dir)/port-\(domain)"
            env["ODYSSEY_DOMAIN"] = domain
            env["ODYSSEY_AGENT_NO_INIT"] = "1"
            env["VCHAN_SOCKET_DIR"] = "/nonexistent"   // proves the mux is used
            p.environment = env
            // ODYSSEY_TEST_AGENT_LOG=DIR keeps each agent's stderr there.
            let logDir = ProcessInfo.processInfo.environment["ODYSSEY_TEST_AGENT_LOG"]
            let log = logDir.map { "\($0)/agent-\(domain).log" } ?? "/dev/null"
            if logDir != nil { FileManager.default.createFile(atPath: log, contents: nil) }
            p.standardError = FileHandle(forWritingAtPath: log)
            try p.run()
            agents.append(p)
        }

        deinit {
            for a in agents where a.isRunning { a.terminate() }
            for a in agents { a.waitUntilExit() }
            for r in relays { r.stop() }
            backends.closeAll()
            try? FileManager.default.removeItem(atPath: dir)
        }

        func run(_ link: AgentLink, _ command: String, stdin: [UInt8]? = nil) throws -> (Int32, String) {
            let id = UUID().uuidString.prefix(8)
            let inPath = "\(dir)/in-\(id)", outPath = "\(dir)/out-\(id)"
            var inFD: Int32? = nil
            if let stdin { FileManager.default.createFile(atPath: inPath, contents: Data(stdin)); inFD = open(inPath, O_RDONLY) }
            let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            let errFD = open("/dev/null", O_WRONLY)
            defer { if let inFD { close(inFD) }; close(outFD); close(errFD); unlink(inPath); unlink(outPath) }
            let st = try link.run(user: AgentFixture.user, command: command, stdin: inFD, stdout: outFD, stderr: errFD)
            return (st, String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self))
        }
    }

    func testAgentOverVirtioSerialMux() throws {
        let f = try Fixture()
        let link = try AgentLink(domain: "vmwork", vchan: f.vchan, logger: f.logger)
        defer { link.close() }
        try f.startDomain("vmwork")
        XCTAssertEqual(try link.waitReady(timeoutMs: 60_000), QrexecVersion.current)
        // A command, its output and exit status, through a data stream.
        let (st, out) = try f.run(link, "echo hi from the mux; exit 3")
        XCTAssertEqual(st, 3)
        XCTAssertEqual(out, "hi from the mux\n")
        // stdin to EOF and back, 2 MiB, checksummed by content.
        let data = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let (st2, out2) = try f.run(link, "cat | wc -c")
        XCTAssertEqual(st2, 0); XCTAssertEqual(out2.trimmingCharacters(in: .whitespacesAndNewlines), "0", "no stdin: EOF at once")
        let (st3, out3) = try f.run(link, "od -An -tx1 -v | tr -d ' \\n' | wc -c", stdin: data)
        XCTAssertEqual(st3, 0)
        XCTAssertEqual(out3.trimmingCharacters(in: .whitespacesAndNewlines), "\(data.count * 2)")
        // Concurrent sessions over the one port.
        let results = LockedResults()
        let g = DispatchGroup()
        for i in 0..<6 {
            g.enter()
            Thread.detachNewThread {
                do { let r = try f.run(link, "echo \(i)"); results.add(r.1 == "\(i)\n"); if r.1 != "\(i)\n" { print("session \(i): \(r)") } } catch {
                    print("session \(i): \(error)"); results.add(false)
                }
                g.leave()
            }
        }
        XCTAssertEqual(g.wait(timeout: .now() + 120), .success)
        XCTAssertEqual(results.trues, 6)
    }

    /// A data channel passed as a descriptor (issue 5's direct channels):
    /// the mux turns it into a stream and the agent gets a socket with the message.
    func testPassedDataChannelThroughTheMux() throws {
        let f = try Fixture()
        let link = try AgentLink(domain: "vmfd", vchan: f.vchan, logger: f.logger)
        defer { link.close() }
        try f.startDomain("vmfd")
        try link.waitReady(timeoutMs: 60_000)
        var sp: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sp), 0)
        defer { close(sp[1]) }
        try link.exec(user: AgentFixture.user, command: "echo passed", connectDomain: 7, passing: sp[0])
        close(sp[0])
        // We are the caller on the other end: HELLO, then read until the exit code.
        var stream = QrexecStream(fd: sp[1], incoming: .serviceToClient)
        _ = try stream.handshake()
        var out = ""
        var status: Int32?
        while status == nil {
            switch try stream.receive() {
            case .stdout(let b): out += String(decoding: b, as: UTF8.self)
            case .exitCode(let c): status = c
            default: break
            }
        }
        XCTAssertEqual(out, "passed\n")
        XCTAssertEqual(status, 0)
    }

    /// odysseyd restarts: the link (and the host's mux session) goes away,
    /// a new one connects to the same chardev; the agent resyncs and reconnects.
    func testAgentReconnectsAfterHostRestart() throws {
        let f = try Fixture()
        let first = try AgentLink(domain: "vmre", vchan: f.vchan, logger: f.logger)
        try f.startDomain("vmre")
        try first.waitReady(timeoutMs: 60_000)
        first.close()
        XCTAssertTrue(first.waitClosed(timeoutMs: 30_000))
        let second = try AgentLink(domain: "vmre", vchan: f.vchan, logger: f.logger)
        defer { second.close() }
        XCTAssertEqual(try second.waitReady(timeoutMs: 60_000), QrexecVersion.current)
        XCTAssertEqual(try f.run(second, "echo again").1, "again\n")
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ ok: Bool) { lock.lock(); if ok { n += 1 }; lock.unlock() }
    var trues: Int { lock.lock(); defer { lock.unlock() }; return n }
}
