// odysseyd: loads config and plugins, serves the admin socket, reloads on
// SIGHUP and stops cleanly on SIGTERM/SIGINT.
import FoundationEssentials
import Logging
import Synchronization
import Domains
import PluginABI
import Policy
#if canImport(Glibc)
import Glibc
#endif

public final class Daemon: @unchecked Sendable {
    public let configPath: String
    let logger: Logger
    let events: EventBus
    let started = Sys.monotonicSeconds()
    private struct Current { var config: OdysseyConfig; var backends: Backends; var policy: PolicyService }
    private let current: Mutex<Current>
    public let store: DomainStore
    public let volumes: VolumeManager
    public let runtime: DomainRuntime
    /// What admin methods call to run domains (the runtime).
    public var lifecycle: DomainLifecycle { runtime }
    private var server: AdminServer?
    private var runService: RunService?
    /// The qrexec broker (calls between domains, asks, disposables).
    public let broker: Broker
    /// Add-ons that hook lifecycle events (replaced on reload).
    let addonHooks: AddonHooks
    /// The admin methods (set by start()); also answer admin.* qrexec calls from domains.
    public private(set) var adminMethods: AdminMethods?

    var config: OdysseyConfig { current.withLock { $0.config } }
    var backends: Backends { current.withLock { $0.backends } }
    var policy: PolicyService { current.withLock { $0.policy } }

    /// Loads config and plugins; throws on anything that must stop start-up.
    public init(configPath: String, logger: Logger) throws(OdysseyError) {
        Self.ignoreSIGPIPE()
        self.configPath = configPath
        self.logger = logger
        let config = try OdysseyConfig.load(path: configPath)
        let events = EventBus()
        self.events = events
        let backends = try Self.loadBackends(config, logger: logger, events: events)
        do { try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true) } catch {
            throw OdysseyError(.io, "cannot create state_dir \(config.stateDir): \(error)")
        }
        Self.buildAddonView(config, backends, logger: logger)
        addonHooks = AddonHooks(events: events, logger: logger)
        addonHooks.replace(with: backends)
        let store = try mapped { () throws(DomainError) in
            try DomainStore(path: config.stateDir + "/domains.db", defaultVmm: config.role(.vmm).defaultFactory ?? "native")
        }
        let volumes = try mapped { () throws(DomainError) in
            try VolumeManager(stateDir: config.stateDir, warn: { [logger] in logger.warning("volumes: \($0)") },
                              progress: { [logger] in logger.notice("volumes: \($0)") })
        }
        let recovered = try mapped { () throws(DomainError) in try volumes.recover(knownDomains: Set(store.allDomains().map(\.name)),
                                                                                             failed: { logger.error("recovery: \($0)") }) }
        for r in recovered { logger.notice("recovered after a crash: \(r)") }
        self.store = store
        self.volumes = volumes
        let box = BackendsBox()
        let runtime = DomainRuntime(store: store, volumes: volumes, backends: { box.get() }, events: events, logger: logger,
                                    agentPath: config.agentPath, domainRpcDir: config.domainRpcDir,
                                    addonView: AddonView.directory(stateDir: config.stateDir), kernelDir: config.kernelDir)
        self.runtime = runtime
        let policy = try Self.makePolicy(config, logger: logger) { PolicyFacts.system(store: store, runtime: runtime) }
        current = Mutex(Current(config: config, backends: backends, policy: policy))
        let disposables = Disposables(store: store, volumes: volumes, runtime: runtime, logger: logger)
        broker = Broker(runtime: runtime, store: store, policy: { box.daemon!.policy }, disposables: disposables,
                        hostServices: HostServices(directories: [config.stateDir + "/qubes-rpc"] + config.rpcDirs
                                                      + [AddonView.adminServicesDirectory(stateDir: config.stateDir)], logger: logger),
                        askTimeoutSeconds: { box.daemon?.config.askTimeoutSeconds ?? 60 }, logger: logger)
        // [limits], read at each use: a SIGHUP reload applies to the next call.
        let limits: @Sendable () -> ResourceLimits = { box.daemon?.config.limits ?? .defaults }
        runtime.setLimits(limits); disposables.setLimits(limits); broker.setLimits(limits)
        runtime.setTriggerHandler(broker.triggerHandler)
        events.subscribe { e in
            if e.kind == .lifecycle, e.state == .halted || e.state == .crashed { disposables.domainHalted(e.domain) }
        }
        box.daemon = self
        events.subscribe { [logger] e in
            if e.kind == .lifecycle { logger.info("\(e.source): domain \(e.domain) is \(e.state.rawValue)") }
        }
    }

    /// The runtime policy directory (<state_dir>/policy.d) comes first: it
    /// wins a basename clash, as /run/qubes/policy.d does in Qubes. The
    /// add-ons' default policies come last: an admin's file of the same name
    /// replaces one, and a lower-numbered file is read before it.
    static func policyDirectories(_ config: OdysseyConfig) -> [String] {
        [config.stateDir + "/policy.d"] + config.policyDirs + [AddonView.policyDirectory(stateDir: config.stateDir)]
    }

    /// (Re)builds <state_dir>/addons from the loaded add-ons. A failure is
    /// logged: add-ons then do not run, everything else does.
    static func buildAddonView(_ config: OdysseyConfig, _ backends: Backends, logger: Logger) {
        let runner = Path.join(Path.dirname(config.agentPath), AddonView.runnerName)
        do {
            let warnings = try AddonView.build(at: AddonView.directory(stateDir: config.stateDir),
                                               packages: backends.addonPackages, runner: Sys.exists(runner) ? runner : nil)
            for w in warnings { logger.warning("\(w)") }
        } catch {
            logger.error("add-ons view: \(error); add-on services and commands are unavailable")
        }
    }

    private static func makePolicy(_ config: OdysseyConfig, logger: Logger,
                                   facts: @escaping @Sendable () -> PolicySystem) throws(OdysseyError) -> PolicyService {
        let runtime = config.stateDir + "/policy.d"
        do { try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true) } catch {
            throw OdysseyError(.io, "cannot create \(runtime): \(error)")
        }
        return PolicyService(directories: policyDirectories(config), logger: logger, system: facts)
    }

    private static func loadBackends(_ config: OdysseyConfig, logger: Logger, events: EventBus) throws(OdysseyError) -> Backends {
        let b = Backends.load(config: config, logger: logger, events: events)
        let (errors, warnings) = b.checkBackendConfig()
        for w in warnings { logger.warning("\(w)") }
        if !errors.isEmpty { throw OdysseyError(.config, errors.joined(separator: "\n")) }
        return b
    }

    /// Creates the state directory, starts the admin socket and signal
    /// handling. Returns once the daemon is ready to serve.
    public func start() throws(OdysseyError) {
        let c = config
        do { try FileManager.default.createDirectory(atPath: c.stateDir, withIntermediateDirectories: true) } catch {
            throw OdysseyError(.io, "cannot create state_dir \(c.stateDir): \(error)")
        }
        try? Sys.writeFileAtomically(c.stateDir + "/odysseyd.pid", "\(getpid())\n")
        PolicyWatcher.start(directories: policy.directories) { [self] in policy.reload(reason: "policy file changed") }
        let methods = AdminMethods(daemon: self)
        adminMethods = methods
        // admin.* calls from domains whose policy target is dom0 (Qubes: a
        // management VM's admin client): answered here, under the admin
        // permission check, with the caller taken from its channel.
        broker.hostServices.register(prefix: "admin.") { source, requested, service, stdin in
            let plus = service.firstIndex(of: "+")
            let method = plus.map { String(service[..<$0]) } ?? service
            let argument = plus.map { String(service[service.index(after: $0)...]) } ?? ""
            let dest = requested.isEmpty || requested == "@adminvm" || requested == "@default" ? "dom0" : requested
            let request = AdminRequest(method: method, argument: argument, source: source, destType: "name",
                                       dest: dest, payload: stdin)
            guard method == "admin.Events" else { return .bytes(stdout: methods.handle(request, callerSource: source).encoded(), exitCode: 0) }
            // admin.Events streams: the method writes event frames into one end
            // of a socketpair until the broker, pumping the other end to the
            // caller as STDOUT, shuts it down when the caller leaves.
            var sv: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
                return .bytes(stdout: AdminResponse.failure(AdminError("QubesException", "socketpair failed")).encoded(), exitCode: 0)
            }
            let (writer, reader) = (sv[0], sv[1])
            Threads.detach {
                let stream = AdminStream(fd: writer)
                let reply = methods.handle(request, callerSource: source, stream: stream)
                if !stream.wasUsed { try? Sys.writeAll(writer, reply.encoded(), what: "admin.Events reply") }   // refused before streaming
                Sys.close(writer)
            }
            return .stream(reader)
        }
        let srv = AdminServer(path: c.adminSocket, logger: logger) { methods.handle($0) }
        try srv.start(group: c.adminSocketGroup)
        server = srv
        let run = try RunService(path: Path.join(Path.dirname(c.adminSocket), "qrexec.sock"), runtime: runtime,
                                 disposables: broker.disposables, allowedGroup: c.adminSocketGroup, logger: logger)
        try run.start()
        runService = run
        runtime.adoptRunningDomains()
        broker.disposables.startPreloading()
        broker.startTerminalPrompt()   // asks prompt on the terminal in the foreground (no-op unless stdin is a tty)
        let b = backends
        logger.info("odysseyd \(OdysseyVersion.string) ready: \(b.registry.loaded.count) plugins loaded, \(b.registry.refused.count) refused, admin socket \(c.adminSocket)")
    }

    /// The daemon's signals, blocked in every thread (call before any thread
    /// starts) so that only `serveSignals` receives them, synchronously.
    public static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    /// A peer that hangs up is an error for the one write that sees it
    /// (EPIPE), never the end of the daemon: a domain's caller that keeps
    /// writing into a dom0 service which already exited would otherwise kill
    /// odysseyd with SIGPIPE. Called first thing in main, and again by
    /// `init` for daemons embedded in another process (tests, benchmarks).
    /// Children get the default disposition back (Sys.withCleanSpawnAttributes).
    public static func ignoreSIGPIPE() { signal(SIGPIPE, SIG_IGN) }

    public static func blockHandledSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in handledSignals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Runs on the main thread until SIGTERM/SIGINT: SIGHUP reloads.
    public func serveSignals() -> Never {
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.handledSignals { sigaddset(&set, s) }
        while true {
            var sig: Int32 = 0
            guard sigwait(&set, &sig) == 0 else { continue }
            if sig == SIGHUP { reload(); continue }
            stop()
            exit(0)
        }
    }

    /// SIGHUP: re-read config and rescan plugin directories. A bad new config
    /// is reported and the running one kept.
    public func reload() {
        logger.info("reloading (SIGHUP)")
        do {
            let newConfig = try OdysseyConfig.load(path: configPath)
            let newBackends = try Self.loadBackends(newConfig, logger: logger, events: events)
            Self.buildAddonView(newConfig, newBackends, logger: logger)
            addonHooks.replace(with: newBackends)
            let oldPolicy = policy
            let (store, runtime) = (self.store, self.runtime)
            let newPolicy = Self.policyDirectories(newConfig) == oldPolicy.directories ? oldPolicy
                : try Self.makePolicy(newConfig, logger: logger) { PolicyFacts.system(store: store, runtime: runtime) }
            if newPolicy === oldPolicy { oldPolicy.reload(reason: "SIGHUP") }
            let old = current.withLock { cur in
                defer { cur = Current(config: newConfig, backends: newBackends, policy: newPolicy) }
                return cur.backends
            }
            old.closeAll()
            logger.info("reload done: \(newBackends.registry.loaded.count) plugins loaded, \(newBackends.registry.refused.count) refused")
        } catch {
            logger.error("reload failed, keeping the running configuration: \(error)")
        }
    }

    /// Stops serving, closes backends, removes the socket and pid file.
    public func stop() {
        logger.info("stopping")
        server?.stop()
        runService?.stop()
        broker.hostServices.unregister(prefix: "admin.")
        broker.disposables.shutdown()
        backends.closeAll()
        unlink(config.stateDir + "/odysseyd.pid")
    }

    func status() -> StatusReport {
        let c = config, b = backends
        let defaultAvailable = b.defaultVmmName.map { b.registry.factory(.vmm, $0) != nil } ?? false
        return StatusReport(version: OdysseyVersion.string, pid: getpid(), uptimeSeconds: Sys.monotonicSeconds() - started,
                            config: configPath, stateDir: c.stateDir, adminSocket: c.adminSocket,
                            pluginsLoaded: b.registry.loaded.count, pluginsRefused: b.registry.refused.count,
                            defaultVmm: b.defaultVmmName, defaultVmmAvailable: defaultAvailable,
                            defaultVchan: c.role(.vchan).defaultFactory, openVmms: b.openVmms, policy: policy.statusLine,
                            usage: usage())
    }

    /// Use against [limits], for `ody status`.
    func usage() -> UsageReport {
        let mem = runtime.memoryUsage, disp = broker.disposables.usage
        return UsageReport(memoryCommittedMiB: mem.committedMiB, memoryCapacityMiB: mem.capacityMiB,
                           dispvmsAlive: disp.alive, dispvmsTotal: disp.total, asksPending: broker.pending().count)
    }
}

/// Lets the runtime reach the current backends (they change on reload)
/// without holding the daemon itself during init.
final class BackendsBox: @unchecked Sendable {
    weak var daemon: Daemon?
    func get() -> Backends { daemon!.backends }
}
