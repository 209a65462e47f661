// The broker with real components around it: the real vchan-socket plugin
// (loaded like odysseyd does), real AgentLinks, the real policy engine and
// PolicyService, a real domain store and volumes in a temp dir. Only the
// domains are stand-ins: "starting" one makes its AgentLink and a FakeAgent
// (a thread speaking the agent's side of the qrexec protocol over the real
// control channel, with descriptors passed by SCM_RIGHTS), so these tests
// run without root. Native domains with the real agent: BrokerNativeTests.
import Domains
import Foundation
import Logging
import Policy
import Qrexec
import VchanSocketCore
import XCTest
@testable import Host

enum BrokerBuild {
    /// The repository (symlinks resolved: a dev package links Tests/BrokerTests in).
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        let dir = realpath(url.path, nil).map { p in defer { free(p) }; return String(cString: p) } ?? url.path
        return URL(fileURLWithPath: dir).deletingLastPathComponent().deletingLastPathComponent().path
    }()
    /// The package this test was built in (a dev package may link the sources in).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    /// `ODYSSEY_BUILD_DIR`, else `<package>/.build/debug`.
    static var dir: String { ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? packageRoot + "/.build/debug" }
}

/// A temp world: vchan plugin, store, volumes, policy directory, fake runtime, broker.
final class BrokerWorld: @unchecked Sendable {
    let dir: String
    let socketDir: String
    let backends: Backends
    let vchan: VchanBackend
    let store: DomainStore
    let volumes: VolumeManager
    let policyDir: String
    let policy: PolicyService
    let runtime: FakeRuntime
    let broker: Broker
    let logger: Logger
    var askTimeout = 30

    /// The `uuid:UUID` word the broker adds after the source in QUBESRPC.
    func uuidWord(_ name: String) -> String { "uuid:" + ((try? store.snapshot().domain(name).uuid.text) ?? "?") }

    init(policy text: String, askTimeout: Int = 30, maxWorkers: Int = 96, perSource: Int = 24,
         limits: ResourceLimits = .defaults) throws {
        let fm = FileManager.default
        let plugin = BrokerBuild.dir + "/libvchan-socket.so"
        guard fm.fileExists(atPath: plugin) else { throw XCTSkip("\(plugin) is not built") }
        dir = "/tmp/obt-" + String(UUID().uuidString.prefix(8))
        socketDir = dir + "/vchan"
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        try fm.copyItem(atPath: plugin, toPath: plugins + "/libvchan-socket.so")
        try fm.copyItem(atPath: BrokerBuild.repoRoot + "/Plugins/vchan-socket/vchan-socket.json", toPath: plugins + "/vchan-socket.json")
        let cfg = """
        plugin_dirs = ["\(plugins)"]
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/admin.sock"
        [vchan]
        default = "socket"
        [vchan.socket]
        socket_dir = "\(socketDir)"
        """
        let config = try OdysseyConfig.parse(cfg, path: dir + "/odyssey.toml")
        var logger = Logger(label: "broker-tests")
        logger.logLevel = ProcessInfo.processInfo.environment["BROKER_TEST_LOG"] != nil ? .debug : .critical
        self.logger = logger
        backends = Backends.load(config: config, logger: logger, events: EventBus())
        vchan = try backends.vchan()
        store = try DomainStore(path: dir + "/state/domains.db", defaultVmm: "native")
        volumes = try VolumeManager(stateDir: dir + "/state")
        policyDir = dir + "/policy.d"
        try fm.createDirectory(atPath: policyDir, withIntermediateDirectories: true)
        try text.write(toFile: policyDir + "/50-test.policy", atomically: true, encoding: .utf8)
        let runtime = FakeRuntime()
        self.runtime = runtime
        let store = self.store
        let policy = PolicyService(directories: [policyDir], logger: logger) { PolicyFacts.system(store: store, runtime: runtime) }
        self.policy = policy
        self.askTimeout = askTimeout
        let disposables = Disposables(store: store, volumes: volumes, runtime: runtime, logger: logger)
        let box = TimeoutBox(askTimeout)
        broker = Broker(runtime: runtime, store: store, policy: { policy }, disposables: disposables,
                        hostServices: HostServices(directories: [BrokerBuild.repoRoot + "/config/qubes-rpc"], logger: logger),
                        askTimeoutSeconds: { box.value }, logger: logger, maxWorkers: maxWorkers, maxWorkersPerSource: perSource)
        timeoutBox = box
        disposables.setLimits { limits }
        broker.setLimits { limits }
        runtime.world = self
        runtime.disposables = disposables
        try mapped { () throws(DomainError) in
            try store.create("tpl", class: .templateVM, label: "black")
            try volumes.createVolumes("tpl", klass: .templateVM)
        }
    }

    let timeoutBox: TimeoutBox

    func create(_ names: String..., dispTemplate: Bool = false) throws {
        for n in names {
            try mapped { () throws(DomainError) in
                try store.create(n, class: .appVM, label: "blue", template: "tpl")
                try volumes.createVolumes(n, klass: .appVM)
                if dispTemplate { try store.setProperty("template_for_dispvms", of: n, to: "True") }
            }
        }
    }

    func writePolicy(_ text: String) throws {
        try text.write(toFile: policyDir + "/50-test.policy", atomically: true, encoding: .utf8)
        policy.reload(reason: "test")
    }

    /// Starts a domain (its fake agent), returns it.
    @discardableResult
    func start(_ name: String) throws -> FakeAgent {
        try runtime.start(name)
        return runtime.agent(name)!
    }

    func agentSocket(_ name: String) -> String { dir + "/a-\(name).sock" }

    func dispNames() -> [String] { store.allDomains().filter { $0.klass == .dispVM }.map(\.name).sorted() }

    deinit {
        broker.disposables.shutdown()
        for n in runtime.runningNames { try? runtime.kill(n) }
        backends.closeAll()
        // Links close on their own threads and unlink their sockets as they
        // go: a removal racing with them fails on a vanished file; retry.
        for _ in 0..<20 {
            do { try FileManager.default.removeItem(atPath: dir); break } catch { usleep(50_000) }
        }
    }
}

final class TimeoutBox: @unchecked Sendable {
    var value: Int
    init(_ v: Int) { value = v }
}

/// Domains whose "start" makes an AgentLink and a FakeAgent.
final class FakeRuntime: BrokerRuntime, DomainLifecycle, @unchecked Sendable {
    weak var world: BrokerWorld?
    weak var disposables: Disposables?
    private let lock = NSLock()
    private var running: [String: (link: AgentLink, agent: FakeAgent, paused: Bool)] = [:]
    private var transient: Set<String> = []
    var startDelay: [String: TimeInterval] = [:]
    private(set) var starts: [String] = []
    /// Real odyssey-agent processes instead of FakeAgents (no namespaces:
    /// ODYSSEY_AGENT_NO_INIT=1), with these service directories.
    var realAgentRPCDirs: String?
    private var processes: [String: Process] = [:]

    var runningNames: [String] { lock.withLock { Array(running.keys) } }
    func agent(_ name: String) -> FakeAgent? { lock.withLock { running[name]?.agent } }

    func powerState(_ name: String) -> PowerState {
        lock.withLock {
            if name == "dom0" { return .running }
            if transient.contains(name) { return .transient }
            guard let r = running[name] else { return .halted }
            if case .closed = r.link.state { return .halted }
            return r.paused ? .paused : .running
        }
    }

    func currentState(_ name: String) -> DomainCurrentState { DomainCurrentState(state: powerState(name)) }

    func start(_ name: String) throws(OdysseyError) {
        guard let world else { throw OdysseyError(.state, "no world") }
        guard world.store.snapshot().contains(name) else { throw OdysseyError(.notFound, "no domain \(name)") }
        let ok: Bool = lock.withLock {
            guard running[name] == nil, !transient.contains(name) else { return false }
            transient.insert(name)
            starts.append(name)
            return true
        }
        guard ok else { throw OdysseyError(.state, "\(name) is already running or starting") }
        defer { lock.withLock { _ = transient.remove(name) } }
        if let d = lock.withLock({ startDelay[name] }) { usleep(UInt32(d * 1_000_000)) }
        let link = try AgentLink(domain: name, vchan: world.vchan, logger: world.logger, onTrigger: world.broker.triggerHandler)
        let agent = FakeAgent(name: name, socketDir: world.socketDir)
        if let dirs = realAgentRPCDirs {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: BrokerBuild.dir + "/odyssey-agent")
            var env = ProcessInfo.processInfo.environment
            env["VCHAN_SOCKET_DIR"] = world.socketDir + "/" + name
            env["ODYSSEY_DOMAIN"] = name
            env["ODYSSEY_AGENT_NO_INIT"] = "1"
            env["ODYSSEY_RPC_DIRS"] = dirs
            env["ODYSSEY_AGENT_SOCKET"] = world.agentSocket(name)
            p.environment = env
            let log = world.dir + "/agent-\(name).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = FileHandle(forWritingAtPath: log)
            do { try p.run() } catch { throw OdysseyError(.io, "agent: \(error)") }
            lock.withLock { processes[name] = p }
        } else {
            agent.start()
        }
        try link.waitReady(timeoutMs: 10_000)
        if realAgentRPCDirs != nil {
            for _ in 0..<400 where !FileManager.default.fileExists(atPath: world.agentSocket(name)) { usleep(5_000) }
        }
        lock.withLock { running[name] = (link, agent, false) }
    }

    func shutdown(_ name: String, wait: Bool) throws(OdysseyError) { try kill(name) }

    func kill(_ name: String) throws(OdysseyError) {
        guard let r = lock.withLock({ running.removeValue(forKey: name) }) else {
            throw OdysseyError(.state, "\(name) is not running")
        }
        r.agent.stop()
        if let p = lock.withLock({ processes.removeValue(forKey: name) }) {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        r.link.close(reason: "killed")
        // Not through `world`: a kill on a background thread would hold the
        // world and, at the end of a run, could be the one to free it (its
        // cleanup then cut short by the process's exit, its temp dir left).
        disposables?.domainHalted(name)
    }

    func pause(_ name: String) throws(OdysseyError) { try setPaused(name, true) }
    func unpause(_ name: String) throws(OdysseyError) { try setPaused(name, false) }

    private func setPaused(_ name: String, _ p: Bool) throws(OdysseyError) {
        lock.lock()
        defer { lock.unlock() }
        guard running[name] != nil else { throw OdysseyError(.state, "\(name) is not running") }
        running[name]!.paused = p
    }

    func link(_ name: String) throws(OdysseyError) -> AgentLink {
        guard let l = lock.withLock({ running[name]?.link }) else { throw OdysseyError(.state, "\(name) is not running") }
        return l
    }
}

/// The outcome of a call made from a fake agent.
struct CallResult {
    var status: Int32
    var stdout: String
    var stderr = ""
    var refused: Bool { status == 126 }
}

/// The agent's side of the protocol, in a thread: HELLO, then services for
/// MSG_EXEC_CMDLINE (QUBESRPC) with the passed data channel, and calls
/// (TRIGGER_SERVICE3/4) answered by MSG_SERVICE_CONNECT / MSG_SERVICE_REFUSED.
final class FakeAgent: @unchecked Sendable {
    let name: String
    let socketDir: String
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var stopped = false
    private var waiting: [String: (DispatchSemaphore, Int32?)] = [:]
    private var nextIdent = 0
    /// Every QUBESRPC command line this domain was asked to run.
    private(set) var served: [String] = []
    /// Service "test.Hold" blocks until `releaseHolds()` (or the channel
    /// closes), asleep in poll(2): tests that count wakeups need a quiet agent.
    private let releasePipe: (r: Int32, w: Int32) = {
        var p: [Int32] = [-1, -1]
        pipe(&p)
        return (p[0], p[1])
    }()
    func releaseHolds() { var b: UInt8 = 1; _ = write(releasePipe.w, &b, 1) }
    deinit { close(releasePipe.r); close(releasePipe.w) }
    /// Sessions currently running here.
    private(set) var active = 0

    init(name: String, socketDir: String) {
        self.name = name
        self.socketDir = socketDir
    }

    func start() {
        let path = ChannelLayout.clientPath(base: socketDir + "/" + name, local: name, remote: "dom0", port: 512)
        Thread.detachNewThread { [self] in
            guard let ch = try? SocketChannel.connect(path: path, timeoutNs: 10_000_000_000) else { return }
            lock.withLock { fd = ch.fd }
            try? send(.hello(PeerInfo(version: QrexecVersion.current)))
            serve(ch.fd)
            lock.withLock {
                fd = -1
                for (k, v) in waiting { v.0.signal(); waiting[k] = (v.0, nil) }
            }
            ch.close()
        }
    }

    func stop() {
        lock.withLock {
            stopped = true
            if fd >= 0 { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Writes have their own lock: a writer blocked on a full channel must
    /// never keep the reader from taking the host's answers.
    private let writeLock = NSLock()

    func send(_ m: QrexecMessage) throws {
        let f = lock.withLock { fd }
        guard f >= 0 else { throw QrexecError.closed }
        try writeLock.withLock { try FD.writeAll(f, m.encoded) }
    }

    /// Sends raw bytes on the control channel (malformed-message tests).
    func sendRaw(_ bytes: [UInt8]) { lock.withLock { if fd >= 0 { try? FD.writeAll(fd, bytes) } } }

    private func serve(_ fd: Int32) {
        var version: UInt32? = nil
        while true {
            var fds: [Int32] = []
            guard let head = try? FDPassing.recvExact(fd, MsgHeader.size, fds: &fds) else { return }
            let h = MsgHeader(untrusted_bytes: head)
            guard let n = try? MessageRules.admit(h, version: version, direction: .hostToAgent) else { return }
            let body = n == 0 ? [] : ((try? FDPassing.recvExact(fd, n, fds: &fds)) ?? [])
            guard let m = try? MessageRules.validate(h, untrusted_body: body) else { return }
            switch m {
            case .hello(let info):
                version = min(info.version, QrexecVersion.current)
            case .execCmdline(let p):
                guard let data = fds.first else { continue }
                lock.withLock { served.append(p.cmdlineString); active += 1 }
                Thread.detachNewThread { [self] in
                    runService(p.cmdlineString, data)
                    close(data)
                    lock.withLock { active -= 1 }
                    try? send(.connectionTerminated(connectDomain: p.connectDomain, connectPort: p.connectPort))
                }
            case .serviceConnect(let p):
                let ident = p.cmdlineString
                lock.withLock {
                    if let w = waiting[ident] { waiting[ident] = (w.0, fds.first); w.0.signal() } else { fds.forEach { close($0) } }
                }
            case .serviceRefused(let s):
                lock.withLock { if let w = waiting[s.ident] { w.0.signal() } }
                fds.forEach { close($0) }
            default:
                fds.forEach { close($0) }
            }
        }
    }

    /// The services of every fake domain.
    private func runService(_ cmdline: String, _ fd: Int32) {
        // "user:QUBESRPC SERVICE+ARG SOURCE"
        let parts = cmdline.split(separator: " ").map(String.init)
        guard parts.count >= 3, parts[0].hasSuffix(":QUBESRPC") else { return }
        let service = parts[1], source = parts[2]
        var s = QrexecStream(fd: fd, incoming: .clientToService)
        guard (try? s.handshake()) != nil else { return }
        func out(_ text: String) { try? s.send(.stdout(Array(text.utf8))) }
        func finish(_ code: Int32) { try? s.send(.stdout([])); try? s.send(.exitCode(code)) }
        switch PolicyRequest.split(call: service).service {
        case "test.Echo", "test.Cat":
            while let m = try? s.receive() {
                if case .stdin(let b) = m { if b.isEmpty { break }; try? s.send(.stdout(b)) }
            }
            finish(0)
        case "test.Hold":
            out("holding\n")
            // Until released (the pipe stays readable: every hold ends) or
            // the caller goes away.
            while true {
                var p = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: releasePipe.r, events: Int16(POLLIN), revents: 0)]
                guard poll(&p, 2, -1) >= 0 else { if errno == EINTR { continue }; return }
                if p[1].revents != 0 { break }
                if p[0].revents != 0 {
                    var b: UInt8 = 0
                    if recv(fd, &b, 1, Int32(MSG_PEEK)) <= 0 { return }
                    // STDIN data: drain it
                    guard (try? s.receive()) != nil else { return }
                }
            }
            finish(0)
        case "test.Exit":
            finish(Int32(PolicyArgument.of(service)) ?? 3)
        default:
            out("\(name) serves \(service) for \(source)\n")
            finish(0)
        }
    }

    /// Asks the broker for a call and runs it to its end, like `ody-call`.
    /// `forgedSource` sends TRIGGER_SERVICE4 with that source field.
    func call(_ target: String, _ service: String, stdin: String = "", forgedSource: String? = nil,
              timeout: TimeInterval = 30) -> CallResult {
        let ident: String = lock.withLock { nextIdent += 1; return "\(name)-\(nextIdent)" }
        let sem = DispatchSemaphore(value: 0)
        lock.withLock { waiting[ident] = (sem, nil) }
        defer { lock.withLock { _ = waiting.removeValue(forKey: ident) } }
        do {
            if let forgedSource {
                try send(.triggerService4(TriggerService4(sourceDomain: forgedSource, targetDomain: target, ident: ident, serviceName: service)))
            } else {
                try send(.triggerService3(TriggerService3(targetDomain: target, ident: ident, serviceName: service)))
            }
        } catch { return CallResult(status: 125, stdout: "") }
        guard sem.wait(timeout: .now() + timeout) == .success else { return CallResult(status: 124, stdout: "timeout") }
        guard let data = lock.withLock({ waiting[ident]?.1 }) else { return CallResult(status: 126, stdout: "") }
        defer { close(data) }
        return Self.runClient(data, stdin: stdin)
    }

    /// Triggers a call and returns its data channel (nil: refused) without running it.
    func open(_ target: String, _ service: String, timeout: TimeInterval = 30) -> Int32? {
        let ident: String = lock.withLock { nextIdent += 1; return "\(name)-\(nextIdent)" }
        let sem = DispatchSemaphore(value: 0)
        lock.withLock { waiting[ident] = (sem, nil) }
        defer { lock.withLock { _ = waiting.removeValue(forKey: ident) } }
        try? send(.triggerService3(TriggerService3(targetDomain: target, ident: ident, serviceName: service)))
        guard sem.wait(timeout: .now() + timeout) == .success else { return nil }
        return lock.withLock { waiting[ident]?.1 }
    }

    /// Sends a trigger and does not wait (flooding).
    func fire(_ target: String, _ service: String) {
        let ident: String = lock.withLock { nextIdent += 1; return "f\(nextIdent)" }
        try? send(.triggerService3(TriggerService3(targetDomain: target, ident: ident, serviceName: service)))
    }

    static func runClient(_ data: Int32, stdin: String) -> CallResult {
        var inP: [Int32] = [0, 0], outP: [Int32] = [0, 0]
        pipe(&inP); pipe(&outP)
        let input = Array(stdin.utf8)
        let inW = inP[1]
        Thread.detachNewThread {
            _ = try? FD.writeAll(inW, input)
            close(inW)
        }
        var errP: [Int32] = [0, 0]
        pipe(&errP)
        let collected = ByteBox(), errors = ByteBox()
        let done = DispatchSemaphore(value: 0)
        for (fd, box) in [(outP[0], collected), (errP[0], errors)] {
            Thread.detachNewThread {
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n <= 0 { break }
                    box.bytes += buf[0..<n]
                }
                done.signal()
            }
        }
        let status = (try? DataClient.run(channel: data, stdin: inP[0], stdout: outP[1], stderr: errP[1])) ?? 125
        close(inP[0]); close(outP[1]); close(errP[1])
        done.wait(); done.wait()
        close(outP[0]); close(errP[0])
        return CallResult(status: status, stdout: String(decoding: collected.bytes, as: UTF8.self),
                          stderr: String(decoding: errors.bytes, as: UTF8.self))
    }
}

final class ByteBox: @unchecked Sendable { var bytes: [UInt8] = [] }

func eventually(_ timeout: TimeInterval = 10, _ what: String = "", file: StaticString = #filePath, line: UInt = #line,
                _ cond: () -> Bool) {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end { if cond() { return }; usleep(10_000) }
    XCTFail("timed out waiting: \(what)", file: file, line: line)
}
