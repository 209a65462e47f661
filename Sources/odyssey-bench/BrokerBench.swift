// Issue 5 bars: a call between domains, disposables cold and preloaded, the
// data channel's throughput against a raw socketpair, and 1,000 concurrent
// calls across 50 domains.
//
// Two set-ups, both in this process:
//  - "in-process agents": the real broker, AgentLinks, vchan-socket plugin,
//    policy engine and domain store; the domains' agents are threads that
//    speak the agent's side of the protocol (as Tests/BrokerTests do). This
//    measures the broker and the data channel it arranges, not a domain's
//    process start-up. No root needed.
//  - native (root): an in-process daemon with the native backend, a busybox
//    template and real agents, for the disposable rows. `ody run --dispvm`
//    is not wired into the CLI yet, so those rows time the broker API it
//    will call: Disposables.withDisposable + `true` run through the agent.
import Domains
import Foundation
import Host
import Logging
import Policy
import Qrexec
import VchanSocketCore
#if canImport(Glibc)
import Glibc
#endif

func brokerBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    var rows: [BenchRow] = []
    if let w = try? BenchWorld(env) {
        rows += w.callRows()
        rows += w.throughputRows()
        rows += w.concurrencyRows()
        w.close()
    } else {
        rows.append(BenchRow(name: "broker: set-up failed (libvchan-socket.so built?)", unit: "-", median: .nan,
                             bar: "-", passed: false))
    }
    rows += nativeDisposableRows(env)
    return rows
}

// MARK: the in-process world

private final class BenchWorld: @unchecked Sendable {
    let dir: String
    let backends: Backends
    let vchan: VchanBackend
    let store: DomainStore
    let broker: Broker
    let runtime: BenchRuntime
    let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    init(_ env: BenchEnv) throws {
        let fm = FileManager.default
        dir = "/tmp/obb-\(getpid())"
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        var lib = env.pluginDir + "/libvchan-socket.so"
        if !fm.fileExists(atPath: lib) { lib = env.buildDir + "/libvchan-socket.so" }
        try fm.copyItem(atPath: lib, toPath: plugins + "/libvchan-socket.so")
        try fm.copyItem(atPath: env.repoRoot + "/Plugins/vchan-socket/vchan-socket.json", toPath: plugins + "/vchan-socket.json")
        let cfg = """
        plugin_dirs = ["\(plugins)"]
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/admin.sock"
        [vchan]
        default = "socket"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        """
        let config = try OdysseyConfig.parse(cfg, path: dir + "/odyssey.toml")
        backends = Backends.load(config: config, logger: logger, events: EventBus())
        vchan = try backends.vchan()
        try fm.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/policy", withIntermediateDirectories: true)
        try "bench.Trivial * @anyvm @anyvm allow\nbench.Sink * @anyvm @anyvm allow\n"
            .write(toFile: dir + "/policy/50-bench.policy", atomically: true, encoding: .utf8)
        let store = try DomainStore(path: dir + "/state/domains.db", defaultVmm: "native")
        self.store = store
        let volumes = try VolumeManager(stateDir: dir + "/state")
        let runtime = BenchRuntime()
        self.runtime = runtime
        let snapshotNames: @Sendable () -> PolicySystem = {
            PolicySystem(domains: store.allDomains().map { d in
                PolicyDomain(name: d.name, type: d.klass.rawValue, powerState: runtime.powerState(d.name).rawValue)
            })
        }
        let policy = PolicyService(directories: [dir + "/policy"], logger: logger, system: snapshotNames)
        broker = Broker(runtime: runtime, store: store, policy: { policy },
                        disposables: Disposables(store: store, volumes: volumes, runtime: runtime, logger: logger),
                        hostServices: HostServices(directories: [], logger: logger), askTimeoutSeconds: { 0 }, logger: logger)
        runtime.vchan = vchan
        runtime.socketDir = dir + "/vchan"
        runtime.handler = broker.triggerHandler
        try store.create("tpl", class: .templateVM, label: "black")
        for i in 0..<50 { try store.create(String(format: "d%02d", i), class: .appVM, label: "blue", template: "tpl") }
        for i in 0..<50 { try runtime.start(String(format: "d%02d", i)) }
        // One domain with the real agent as a plain process (no namespaces),
        // its service a real executable: /bin/true.
        let agent = env.pluginDir + "/odyssey-agent"
        if fm.fileExists(atPath: agent) {
            let rpc = dir + "/rpc"
            try fm.createDirectory(atPath: rpc, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: rpc + "/bench.Trivial", withDestinationPath: "/bin/true")
            try store.create("real", class: .appVM, label: "blue", template: "tpl")
            let me = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
            try store.setProperty("default_user", of: "real", to: me)
            runtime.realAgent = (agent, rpc, dir)
            try runtime.start("real")
        }
    }

    func close() {
        runtime.stopAll()
        backends.closeAll()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func callRows() -> [BenchRow] {
        let a = runtime.agents["d00"]!
        var failures = 0
        let t = sample(runs: 2000, warmup: 100) { if a.call("d01", "bench.Trivial").status != 0 { failures += 1 } }
        let ms = t.map { $0 * 1000 }
        // Baseline: one request/answer round trip over a bare socketpair (the floor of any IPC call).
        var p: [Int32] = [0, 0]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &p)
        let echo = p[1]
        Thread.detachNewThread { var b = [UInt8](repeating: 0, count: 64); while read(echo, &b, 64) > 0 { _ = write(echo, b, 1) } }
        var b: UInt8 = 0
        let base = sample(runs: 2000, warmup: 100) { _ = write(p[0], &b, 1); _ = read(p[0], &b, 1) }.map { $0 * 1e6 }
        Glibc.close(p[0]); Glibc.close(p[1])
        let med = median(ms), p99 = percentile(ms, 99)
        var rows = [BenchRow(name: "call d00->d01 trivial service (in-process agents)", unit: "ms", median: med, p99: p99,
                             bar: "<=1.5, p99<=8", passed: med <= 1.5 && p99 <= 8 && failures == 0,
                             baseline: "socketpair round trip \(fmt(median(base))) us; Qubes 20-60 ms",
                             ratio: failures == 0 ? "" : "\(failures) failed")]
        if runtime.powerState("real") == .running {
            var bad = 0
            let r = sample(runs: 500, warmup: 20) { if a.call("real", "bench.Trivial").status != 0 { bad += 1 } }.map { $0 * 1000 }
            // Baseline: spawning /bin/true and waiting for it (the service's own cost).
            let spawn = sample(runs: 200, warmup: 10) {
                var pid: pid_t = 0
                var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                defer { free(argv[0]) }
                if posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0 { var st: Int32 = 0; waitpid(pid, &st, 0) }
            }.map { $0 * 1000 }
            rows.append(BenchRow(name: "call d00->real agent, service /bin/true", unit: "ms", median: median(r), p99: percentile(r, 99),
                                 bar: "<=1.5, p99<=8", passed: median(r) <= 1.5 && percentile(r, 99) <= 8 && bad == 0,
                                 baseline: "spawn+wait /bin/true \(fmt(median(spawn))) ms", ratio: bad == 0 ? "" : "\(bad) failed"))
        }
        return rows
    }

    func throughputRows() -> [BenchRow] {
        let total = 2 << 30   // 2 GiB per run
        let chunk = 65536
        let a = runtime.agents["d02"]!
        var rates: [Double] = []
        for _ in 0..<3 {
            guard let fd = a.open("d03", "bench.Sink") else { break }
            let t0 = nowNanos()
            var s = QrexecStream(fd: fd, incoming: .serviceToClient)
            guard (try? s.handshake()) != nil else { Glibc.close(fd); break }
            var msg = MsgHeader(type: .dataStdin, len: UInt32(chunk)).bytes + [UInt8](repeating: 7, count: chunk)
            var sent = 0
            while sent < total { if (try? FD.writeAll(fd, msg)) == nil { break }; sent += chunk }
            msg = MsgHeader(type: .dataStdin, len: 0).bytes
            try? FD.writeAll(fd, msg)
            while let m = try? s.receive() { if case .exitCode = m { break } }
            rates.append(Double(sent) / (Double(nowNanos() - t0) / 1e9) / 1e9)
            Glibc.close(fd)
        }
        // Baseline: the same bytes through a bare socketpair, same chunk size, no framing.
        var raw: [Double] = []
        for _ in 0..<3 {
            var p: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &p)
            let r = p[1]
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                var b = [UInt8](repeating: 0, count: chunk)
                while read(r, &b, chunk) > 0 {}
                done.signal()
            }
            let buf = [UInt8](repeating: 7, count: chunk)
            let t0 = nowNanos()
            var sent = 0
            while sent < total { try? FD.writeAll(p[0], buf); sent += chunk }
            shutdown(p[0], Int32(SHUT_WR))
            done.wait()
            raw.append(Double(sent) / (Double(nowNanos() - t0) / 1e9) / 1e9)
            Glibc.close(p[0]); Glibc.close(p[1])
        }
        let m = median(rates), base = median(raw)
        let ratio = base > 0 ? m / base : 0
        return [BenchRow(name: "data channel d02->d03, 2 GiB (in-process agents)", unit: "GB/s", median: m,
                         bar: ">=1.5, >=0.7x raw", passed: m >= 1.5 && ratio >= 0.7,
                         baseline: "raw socketpair \(fmt(base)) GB/s", ratio: "\(fmt(ratio))x raw")]
    }

    func concurrencyRows() -> [BenchRow] {
        let ok = Counter(), failed = Counter()
        let t0 = nowNanos()
        DispatchQueue.concurrentPerform(iterations: 1000) { i in
            let src = String(format: "d%02d", i % 50), dst = String(format: "d%02d", (i * 7 + 1) % 50 == i % 50 ? (i + 1) % 50 : (i * 7 + 1) % 50)
            let r = runtime.agents[src]!.call(dst, "bench.Trivial", timeout: 60)
            if r.status == 0 { ok.add() } else { failed.add() }
        }
        let secs = Double(nowNanos() - t0) / 1e9
        return [BenchRow(name: "1,000 concurrent calls across 50 domains", unit: "ok", median: Double(ok.value),
                         bar: "1000, none lost", passed: ok.value == 1000,
                         baseline: "all done in \(fmt(secs * 1000)) ms", ratio: failed.value == 0 ? "" : "\(failed.value) lost")]
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// Domains whose agents are in-process threads.
private final class BenchRuntime: BrokerRuntime, @unchecked Sendable {
    var vchan: VchanBackend!
    var socketDir = ""
    var handler: (@Sendable (AgentLink, AgentLink.ServiceRequest) -> Void)?
    private(set) var agents: [String: BenchAgent] = [:]
    private var links: [String: AgentLink] = [:]
    private let lock = NSLock()
    /// (agent binary, service dir, scratch dir) for the domain named "real".
    var realAgent: (String, String, String)?
    private var process: pid_t = 0

    func powerState(_ name: String) -> PowerState { lock.withLock { links[name] != nil ? .running : .halted } }
    func start(_ name: String) throws(OdysseyError) {
        let l = try AgentLink(domain: name, vchan: vchan, logger: Logger(label: "b", factory: { _ in SwiftLogNoOpLogHandler() }), onTrigger: handler)
        let a = BenchAgent(name: name, socketDir: socketDir)
        if name == "real", let (agent, rpc, dir) = realAgent {
            let env = ["VCHAN_SOCKET_DIR=\(socketDir)/real", "ODYSSEY_DOMAIN=real", "ODYSSEY_AGENT_NO_INIT=1",
                       "ODYSSEY_RPC_DIRS=\(rpc)", "ODYSSEY_AGENT_SOCKET=\(dir)/real-agent.sock", "PATH=/usr/bin:/bin"]
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_addopen(&actions, 2, dir + "/real-agent.log", O_WRONLY | O_CREAT, 0o644)
            var argv: [UnsafeMutablePointer<CChar>?] = [strdup(agent), nil]
            var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, agent, &actions, nil, &argv, &envp)
            posix_spawn_file_actions_destroy(&actions)
            for p in argv + envp { free(p) }
            guard rc == 0 else { throw OdysseyError(.io, "cannot start the agent") }
            process = pid
        } else {
            a.start()
        }
        try l.waitReady(timeoutMs: 10_000)
        lock.withLock { links[name] = l; agents[name] = a }
    }
    func kill(_ name: String) throws(OdysseyError) { lock.withLock { links.removeValue(forKey: name)?.close() } }
    func pause(_ name: String) throws(OdysseyError) {}
    func unpause(_ name: String) throws(OdysseyError) {}
    func link(_ name: String) throws(OdysseyError) -> AgentLink {
        guard let l = lock.withLock({ links[name] }) else { throw OdysseyError(.state, "\(name) is not running") }
        return l
    }
    func stopAll() {
        lock.withLock { for l in links.values { l.close() }; links = [:] }
        if process > 0 { Glibc.kill(process, SIGKILL); var st: Int32 = 0; waitpid(process, &st, 0) }
    }
}

/// The agent's side of the protocol in a thread (see Tests/BrokerTests/BrokerHarness.swift).
private final class BenchAgent: @unchecked Sendable {
    let name: String
    let socketDir: String
    private let lock = NSLock()
    private let writeLock = NSLock()
    private var fd: Int32 = -1
    private var waiting: [String: (DispatchSemaphore, Int32?)] = [:]
    private var next = 0

    init(name: String, socketDir: String) { self.name = name; self.socketDir = socketDir }

    func start() {
        let path = ChannelLayout.clientPath(base: socketDir + "/" + name, local: name, remote: "dom0", port: 512)
        Thread.detachNewThread { [self] in
            guard let ch = try? SocketChannel.connect(path: path, timeoutNs: 10_000_000_000) else { return }
            lock.withLock { fd = ch.fd }
            send(.hello(PeerInfo(version: QrexecVersion.current)))
            serve(ch.fd)
            lock.withLock { fd = -1; for (_, w) in waiting { w.0.signal() } }
            ch.close()
        }
    }

    func send(_ m: QrexecMessage) {
        let f = lock.withLock { fd }
        guard f >= 0 else { return }
        writeLock.withLock { _ = try? FD.writeAll(f, m.encoded) }
    }

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
            case .hello(let i): version = min(i.version, QrexecVersion.current)
            case .execCmdline(let p):
                guard let data = fds.first else { continue }
                Thread.detachNewThread { [self] in
                    Self.service(p.cmdlineString, data)
                    Glibc.close(data)
                    send(.connectionTerminated(connectDomain: p.connectDomain, connectPort: p.connectPort))
                }
            case .serviceConnect(let p):
                lock.withLock {
                    if let w = waiting[p.cmdlineString] { waiting[p.cmdlineString] = (w.0, fds.first); w.0.signal() } else { fds.forEach { Glibc.close($0) } }
                }
            case .serviceRefused(let s):
                lock.withLock { _ = waiting[s.ident]?.0.signal() }
            default: fds.forEach { Glibc.close($0) }
            }
        }
    }

    static func service(_ cmdline: String, _ fd: Int32) {
        var s = QrexecStream(fd: fd, incoming: .clientToService)
        guard (try? s.handshake()) != nil else { return }
        if cmdline.contains(" bench.Sink") { sink(fd) }
        try? s.send(.stdout([]))
        try? s.send(.exitCode(0))
    }

    /// Discards MSG_DATA_STDIN until its EOF, as a streaming pump does: the
    /// frames are walked in the read buffer (64 KiB reads, as the raw
    /// baseline's), nothing allocated per message.
    static func sink(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        var need = 8            // bytes left of the current header or body
        var inHeader = true
        var header = [UInt8](repeating: 0, count: 8)
        var got = 0
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, 65536) }
            if n <= 0 { return }
            var i = 0
            while i < n {
                let take = min(need, n - i)
                if inHeader { for k in 0..<take { header[got + k] = buf[i + k] }; got += take }
                i += take
                need -= take
                guard need == 0 else { continue }
                if inHeader {
                    let type = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
                    let len = Int(UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24)
                    guard type == 0x190, len <= 65536 else { return }   // only STDIN here; a bad frame ends it
                    if len == 0 { return }                           // EOF
                    inHeader = false; need = len
                } else {
                    inHeader = true; need = 8; got = 0
                }
            }
        }
    }

    /// The data channel of an allowed call (nil: refused).
    func open(_ target: String, _ service: String, timeout: Double = 30) -> Int32? {
        let sem = DispatchSemaphore(value: 0)
        let ident: String = lock.withLock { next += 1; waiting["c\(next)"] = (sem, nil); return "c\(next)" }
        defer { lock.withLock { _ = waiting.removeValue(forKey: ident) } }
        send(.triggerService3(TriggerService3(targetDomain: target, ident: ident, serviceName: service)))
        guard sem.wait(timeout: .now() + timeout) == .success else { return nil }
        return lock.withLock { waiting[ident]?.1 }
    }

    /// A whole call, as `ody-call` makes it: trigger, connect, HELLO, EOF, exit code.
    func call(_ target: String, _ service: String, timeout: Double = 30) -> (status: Int32, Void) {
        guard let fd = open(target, service, timeout: timeout) else { return (126, ()) }
        defer { Glibc.close(fd) }
        let status = (try? DataClient.run(channel: fd, stdin: nil, stdout: -1, stderr: -1)) ?? 125
        return (status, ())
    }
}

// MARK: native disposables (root)

private func nativeDisposableRows(_ env: BenchEnv) -> [BenchRow] {
    func skip(_ why: String) -> [BenchRow] {
        [BenchRow(name: "dispvm cold/preloaded: skipped (\(why))", unit: "-", median: .nan, bar: "-", passed: true)]
    }
    guard geteuid() == 0 else { return skip("needs root") }
    let fm = FileManager.default
    for f in ["libvmm-native.so", "libvchan-socket.so", "odyssey-agent", "odyssey-jailer"]
    where !fm.fileExists(atPath: env.pluginDir + "/" + f) { return skip("\(f) not in \(env.pluginDir)") }
    let dir = env.scratch + "/dispvm"
    try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = """
    state_dir = "\(dir)/state"
    admin_socket = "\(dir)/state/admin.sock"
    plugin_dirs = ["\(env.pluginDir)"]
    policy_dirs = ["\(env.repoRoot)/config/policy.d"]
    agent_path = "\(env.pluginDir)/odyssey-agent"
    log_level = "error"
    [vmm]
    default = "native"
    [vmm.native]
    state_dir = "\(dir)/native"
    cgroup_parent = "odyssey-bench-dvm-\(getpid())"
    [vchan.socket]
    socket_dir = "\(dir)/vchan"
    """
    guard (try? config.write(toFile: dir + "/odyssey.toml", atomically: true, encoding: .utf8)) != nil,
          let daemon = try? Daemon(configPath: dir + "/odyssey.toml", logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })),
          let rootfs = busyboxRootfs(dir) else { return skip("daemon set-up failed") }
    defer {
        daemon.broker.disposables.shutdown()
        for n in daemon.runtime.runningNames { try? daemon.runtime.kill(n) }
        daemon.stop()
        removeCgroups(parent: "odyssey-bench-dvm-\(getpid())")
    }
    do {
        _ = try TemplateBuilder(store: daemon.store, volumes: daemon.volumes).createFromRootfs("tpl", source: rootfs, label: "black")
        try daemon.store.create("dvm", class: .appVM, label: "red", template: "tpl")
        try daemon.volumes.createVolumes("dvm", klass: .appVM)
        try daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
    } catch { return skip("template: \(error)") }
    let d = daemon.broker.disposables
    let runTrue: (String) throws -> Void = { name in
        let null = open("/dev/null", O_RDWR)
        defer { Glibc.close(null) }
        let st = try daemon.runtime.link(name).run(user: "root", command: "true", stdin: nil, stdout: null, stderr: null)
        if st != 0 { throw OdysseyError(.backend, "true exited \(st)") }
    }
    var errors = 0
    let cold = sample(runs: 10, warmup: 1) {
        do { try d.withDisposable(template: "dvm") { try runTrue($0) } } catch { errors += 1 }
    }
    // Preloaded: one kept ready; wait for the refill between runs (not timed).
    try? daemon.store.setFeature("preload-dispvm-max", of: "dvm", to: "1")
    d.startPreloading()
    var warm: [Double] = []
    for _ in 0..<10 {
        for _ in 0..<3000 where d.preloaded("dvm").isEmpty { usleep(2_000) }
        let t0 = nowNanos()
        do { try d.withDisposable(template: "dvm") { try runTrue($0) } } catch { errors += 1 }
        warm.append(Double(nowNanos() - t0) / 1e9)
    }
    let c = cold.map { $0 * 1000 }, w = warm.map { $0 * 1000 }
    let tracked = Set(d.alive)
    let leftovers = daemon.store.allDomains().filter { $0.klass == .dispVM && !tracked.contains($0.name) }.count
    let note = errors == 0 && leftovers == 0 ? "" : "\(errors) errors, \(leftovers) left behind"
    return [
        BenchRow(name: "dispvm cold: withDisposable+run true (broker API)", unit: "ms", median: median(c), p99: percentile(c, 99),
                 bar: "<= 80", passed: median(c) <= 80 && errors == 0, baseline: "Qubes R4.3 6-7 s", ratio: note),
        BenchRow(name: "dispvm preloaded: same, 1 preloaded (broker API)", unit: "ms", median: median(w), p99: percentile(w, 99),
                 bar: "<= 10", passed: median(w) <= 10 && errors == 0, baseline: "cold \(fmt(median(c))) ms; Qubes 2.1-3.1 s"),
    ]
}
