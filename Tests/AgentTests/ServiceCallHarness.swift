// The harness of ServiceCallTests: two real agents ("domains" with their own
// socket dirs), a minimal test broker on AgentLink, and a Unix listener.
import Foundation
import Host
import Qrexec
import VchanSocketCore
import XCTest

/// What the test broker does with a request (chosen by service name).
enum BrokerAction {
    case allow(requestedTarget: String?)
    case refuse
    /// MSG_SERVICE_CONNECT with these attachments instead of the data channel.
    case connectWithoutDescriptor
    case connectWithPipe
    case connectWithTwoSockets
    /// A SERVICE_CONNECT for an ident nobody waits for, then the real one.
    case unknownIdentFirst
    /// No answer at all.
    case hold
}

final class TestBroker: @unchecked Sendable {
    private let lock = NSLock()
    private var links: [String: AgentLink] = [:]
    private(set) var requests: [AgentLink.ServiceRequest] = []
    let decide: @Sendable (AgentLink.ServiceRequest) -> BrokerAction

    init(decide: @escaping @Sendable (AgentLink.ServiceRequest) -> BrokerAction) { self.decide = decide }

    func add(_ l: AgentLink) { lock.withLock { links[l.domain] = l } }
    var seen: [AgentLink.ServiceRequest] { lock.withLock { requests } }

    static func socketPair() -> (Int32, Int32) {
        var sp: [Int32] = [-1, -1]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sp) == 0)
        return (sp[0], sp[1])
    }

    /// AgentLink's onTrigger (runs on the caller link's reader thread).
    func handle(_ caller: AgentLink, _ r: AgentLink.ServiceRequest) {
        lock.withLock { requests.append(r) }
        let target = lock.withLock { links[r.target] }
        do {
            switch decide(r) {
            case .refuse:
                try caller.refuse(ident: r.ident)
            case .hold:
                break
            case .allow(let requested):
                guard let target else { return try caller.refuse(ident: r.ident) }
                try connect(caller, target, r, requested: requested)
            case .connectWithoutDescriptor:
                try caller.serviceConnect(ident: r.ident, connectDomain: 2, port: 999, passingAll: [])
            case .connectWithPipe:
                var p: [Int32] = [-1, -1]
                precondition(pipe(&p) == 0)
                defer { close(p[0]); close(p[1]) }
                try caller.serviceConnect(ident: r.ident, connectDomain: 2, port: 999, passingAll: [p[0]])
            case .connectWithTwoSockets:
                let (a, b) = Self.socketPair(), (c, d) = Self.socketPair()
                defer { for f in [a, b, c, d] { close(f) } }
                try caller.serviceConnect(ident: r.ident, connectDomain: 2, port: 999, passingAll: [a, c])
            case .unknownIdentFirst:
                let (a, b) = Self.socketPair()
                defer { close(a); close(b) }
                try caller.serviceConnect(ident: "not-waiting-1", connectDomain: 2, port: 998, passing: a)
                guard let target else { return try caller.refuse(ident: r.ident) }
                try connect(caller, target, r, requested: nil)
            }
        } catch {
            try? caller.refuse(ident: r.ident)
        }
    }

    private func connect(_ caller: AgentLink, _ target: AgentLink, _ r: AgentLink.ServiceRequest, requested: String?) throws {
        let (callerEnd, targetEnd) = Self.socketPair()
        defer { close(callerEnd); close(targetEnd) }
        var command = "QUBESRPC \(r.serviceName) \(r.source)"
        if let requested { command += " name \(requested)" }
        let port = try target.exec(user: AgentFixture.user, command: command, connectDomain: 1, passing: targetEnd)
        try caller.serviceConnect(ident: r.ident, connectDomain: 2, port: port, passing: callerEnd)
    }
}

/// Two domains, their agents, the broker, and a service directory for "vault".
final class CallWorld: @unchecked Sendable {
    let f: AgentFixture
    let broker: TestBroker
    let work: AgentLink
    let vault: AgentLink
    let rpcDir: String
    let rpcDir2: String
    private var agents: [Process] = []

    var odyCall: String { AgentBuild.dir + "/ody-call" }
    func agentSocket(_ domain: String) -> String { f.dir + "/\(domain).sock" }

    init(decide: @escaping @Sendable (AgentLink.ServiceRequest) -> BrokerAction = CallWorld.defaultPolicy) throws {
        f = try AgentFixture()
        guard FileManager.default.isExecutableFile(atPath: AgentBuild.dir + "/ody-call") else {
            XCTFail("\(AgentBuild.dir)/ody-call is missing: build first")
            throw XCTSkip("ody-call not built")
        }
        rpcDir = f.dir + "/rpc"
        rpcDir2 = f.dir + "/rpc2"
        for d in [rpcDir, rpcDir2] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let b = TestBroker(decide: decide)
        broker = b
        work = try AgentLink(domain: "work", vchan: f.vchan, logger: f.logger, onTrigger: { b.handle($0, $1) })
        vault = try AgentLink(domain: "vault", vchan: f.vchan, logger: f.logger, onTrigger: { b.handle($0, $1) })
        b.add(work); b.add(vault)
        try startAgent("work")
        try startAgent("vault")
        try work.waitReady(timeoutMs: 20_000)
        try vault.waitReady(timeoutMs: 20_000)
        // The agent listens on its local socket right after it starts.
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: agentSocket("work")) { usleep(5_000) }
    }

    static let defaultPolicy: @Sendable (AgentLink.ServiceRequest) -> BrokerAction = { r in
        let service = r.serviceName.split(separator: "+", maxSplits: 1).first.map(String.init) ?? ""
        switch service {
        case "test.Refused": return .refuse
        case "test.NoFD": return .connectWithoutDescriptor
        case "test.PipeFD": return .connectWithPipe
        case "test.TwoFDs": return .connectWithTwoSockets
        case "test.UnknownIdent": return .unknownIdentFirst
        case "test.EnvTarget": return .allow(requestedTarget: r.target)
        default: return .allow(requestedTarget: nil)
        }
    }

    func startAgent(_ domain: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: AgentBuild.agent)
        var env = ProcessInfo.processInfo.environment
        env["VCHAN_SOCKET_DIR"] = f.socketDir + "/" + domain
        env["ODYSSEY_DOMAIN"] = domain
        env["ODYSSEY_AGENT_NO_INIT"] = "1"
        env["ODYSSEY_RPC_DIRS"] = rpcDir + ":" + rpcDir2
        env["ODYSSEY_AGENT_SOCKET"] = agentSocket(domain)
        // Must not leak into services (they get a fresh environment).
        env["QREXEC_SERVICE_ARGUMENT"] = "leaked-from-the-agent"
        env["QREXEC_REQUESTED_TARGET"] = "leaked-from-the-agent"
        p.environment = env
        let log = f.dir + "/agent-\(domain).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        // Not the test's own stdout: a stray agent must not hold `swift test`'s pipe open.
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        lock.withLock { agents.append(p) }
    }

    func agentLog(_ domain: String) -> String {
        (try? String(contentsOfFile: f.dir + "/agent-\(domain).log", encoding: .utf8)) ?? ""
    }

    /// Writes an executable service file.
    func service(_ name: String, _ script: String, dir: String? = nil, mode: Int = 0o755) throws {
        let path = (dir ?? rpcDir) + "/" + name
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    /// Runs ody-call in "work" with these arguments; stdin from `stdin` (or
    /// /dev/null), stdout/stderr captured. Fails the test after `timeout`.
    func call(_ args: [String], stdin: Data? = nil, stdinFile: String? = nil, socket: String? = nil,
              timeout: TimeInterval = 60, file: StaticString = #filePath, line: UInt = #line) throws -> RunResult {
        let id = UUID().uuidString.prefix(8)
        let inPath = stdinFile ?? "\(f.dir)/in-\(id)", outPath = "\(f.dir)/out-\(id)", errPath = "\(f.dir)/err-\(id)"
        if stdinFile == nil { FileManager.default.createFile(atPath: inPath, contents: stdin ?? Data()) }
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { for p in [outPath, errPath] + (stdinFile == nil ? [inPath] : []) { unlink(p) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: odyCall)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["ODYSSEY_AGENT_SOCKET"] = socket ?? agentSocket("work")
        p.environment = env
        p.standardInput = FileHandle(forReadingAtPath: inPath)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        try p.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            XCTFail("ody-call \(args) did not finish within \(timeout) s; agent logs:\n\(agentLog("work"))\n\(agentLog("vault"))",
                    file: file, line: line)
            done.wait()
        }
        return RunResult(status: p.terminationStatus, stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
                         stderr: FileManager.default.contents(atPath: errPath) ?? Data())
    }

    /// A call made in-process, speaking ody-call's protocol to the agent
    /// (LocalCall), then DataClient on the passed channel: no process start.
    func callInProcess(target: String, service: String, stdin: Int32? = nil, stdout: Int32, stderr: Int32) throws -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(agentSocket("work").utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw QrexecError.io("connect", errno: errno) }
        try FD.writeAll(s, try LocalCall.request(target: target, service: service))
        var fds: [Int32] = []
        let head = try FDPassing.recvExact(s, MsgHeader.size, fds: &fds)
        let h = MsgHeader(untrusted_bytes: head)
        let n = try LocalCall.admitReply(h)
        let body = try FDPassing.recvExact(s, n, fds: &fds)
        defer { for f in fds { close(f) } }
        switch try LocalCall.validateReply(h, untrusted_body: body) {
        case .connect:
            guard fds.count == 1 else { throw QrexecError.io("descriptors: \(fds.count)", errno: 0) }
            return try DataClient.run(channel: fds[0], stdin: stdin, stdout: stdout, stderr: stderr)
        case .refused: return 126
        case .failed(let why): throw QrexecError.io(why, errno: 0)
        }
    }

    /// Stops the agents and closes the links (also from deinit; tests call
    /// it themselves so nothing outlives them, whichever thread lets go last).
    func shutdown() {
        let mine: [Process] = lock.withLock { let a = agents; agents = []; return a }
        for a in mine where a.isRunning { a.terminate() }
        for a in mine { a.waitUntilExit() }
        work.close(); vault.close()
    }

    private let lock = NSLock()

    deinit { shutdown() }
}

/// A listening Unix socket for a socket service.
final class UnixListener: @unchecked Sendable {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(fd, 4) == 0 else { throw QrexecError.io("bind/listen \(path)", errno: errno) }
    }

    func acceptOne() -> Int32? {
        let c = accept(fd, nil, nil)
        return c >= 0 ? c : nil
    }

    func close() { Glibc.close(fd); unlink(path) }
}
