// odysseyd: loads config and plugins, serves the admin socket, reloads on
// SIGHUP and stops cleanly on SIGTERM/SIGINT.
import Foundation
import Logging
import PluginABI
#if canImport(Glibc)
import Glibc
#endif

public final class Daemon: @unchecked Sendable {
    public let configPath: String
    let logger: Logger
    let events = EventBus()
    let started = Date()
    private let lock = NSLock()
    private var _config: OdysseyConfig
    private var _backends: Backends
    private var server: AdminServer?
    private var signalSources: [DispatchSourceSignal] = []

    var config: OdysseyConfig { lock.lock(); defer { lock.unlock() }; return _config }
    var backends: Backends { lock.lock(); defer { lock.unlock() }; return _backends }

    /// Loads config and plugins; throws on anything that must stop start-up.
    public init(configPath: String, logger: Logger) throws(OdysseyError) {
        self.configPath = configPath
        self.logger = logger
        let config = try OdysseyConfig.load(path: configPath)
        _config = config
        _backends = try Self.loadBackends(config, logger: logger, events: events)
        events.subscribe { [logger] e in
            if e.kind == .lifecycle { logger.info("\(e.source): domain \(e.domain) is \(e.state.rawValue)") }
        }
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
            throw OdysseyError(.io, "cannot create state_dir \(c.stateDir): \(error.localizedDescription)")
        }
        try? "\(getpid())\n".write(toFile: c.stateDir + "/odysseyd.pid", atomically: true, encoding: .utf8)
        let methods = AdminMethods(daemon: self)
        let srv = AdminServer(path: c.adminSocket, logger: logger) { methods.handle($0) }
        try srv.start(group: c.adminSocketGroup)
        server = srv
        installSignalHandlers()
        let b = backends
        logger.info("odysseyd \(OdysseyVersion.string) ready: \(b.registry.loaded.count) plugins loaded, \(b.registry.refused.count) refused, admin socket \(c.adminSocket)")
    }

    private func installSignalHandlers() {
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)   // the dispatch source receives it instead
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            s.setEventHandler { [self] in
                if sig == SIGHUP { reload() } else { stop(); exit(0) }
            }
            s.resume()
            signalSources.append(s)
        }
    }

    /// SIGHUP: re-read config and rescan plugin directories. A bad new config
    /// is reported and the running one kept.
    public func reload() {
        logger.info("reloading (SIGHUP)")
        do {
            let newConfig = try OdysseyConfig.load(path: configPath)
            let newBackends = try Self.loadBackends(newConfig, logger: logger, events: events)
            let old: Backends
            lock.lock()
            old = _backends
            _config = newConfig
            _backends = newBackends
            lock.unlock()
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
        backends.closeAll()
        unlink(config.stateDir + "/odysseyd.pid")
    }

    func status() -> StatusReport {
        let c = config, b = backends
        let defaultAvailable = b.defaultVmmName.map { b.registry.factory(.vmm, $0) != nil } ?? false
        return StatusReport(version: OdysseyVersion.string, pid: getpid(), uptimeSeconds: Date().timeIntervalSince(started),
                            config: configPath, stateDir: c.stateDir, adminSocket: c.adminSocket,
                            pluginsLoaded: b.registry.loaded.count, pluginsRefused: b.registry.refused.count,
                            defaultVmm: b.defaultVmmName, defaultVmmAvailable: defaultAvailable,
                            defaultVchan: c.role(.vchan).defaultFactory, openVmms: b.openVmms, policy: "not loaded")
    }
}
