// Disposables: a DispVM made from a disposable template for one call (or one
// `ody run --dispvm`), destroyed when the call ends (killed, removed from the
// store, volumes removed: nothing left on disk).
//
// Preloading: the feature `preload-dispvm-max=N` on a disposable template
// (or on dom0, for the global default_dispvm) keeps N disposables started
// and paused, marked `internal` (hidden from ask choices and listings). A
// request takes one (unpaused, `internal` removed), and the pool is refilled
// in the background. A change to the template (or its own template) in the
// store throws the pool away and fills it again.
#if canImport(Qrexec)
import Domains
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class Disposables: @unchecked Sendable {
    public static let preloadFeature = "preload-dispvm-max"
    let store: DomainStore
    let volumes: VolumeManager
    let runtime: BrokerRuntime
    let logger: Logger

    private let monitor = Monitor()
    /// Every disposable we made and have not destroyed yet.
    private var owned: Set<String> = []
    /// Started-and-paused disposables per template, ready to hand out.
    private var pools: [String: [String]] = [:]
    /// Preloads being made, per template.
    private var filling: [String: Int] = [:]
    private var observer: ObserverToken?
    private var changed: Set<String> = []
    private var closed = false
    /// Being destroyed now (a Halted event for them is ours, not news).
    private var destroying: Set<String> = []
    /// Being started now: a stop reported meanwhile (a provider's view of a
    /// definition, or a start that fails) is the start's to handle; it
    /// destroys the disposable itself if the start fails.
    private var starting: Set<String> = []
    /// The domain each handed-out disposable was made for, and how many each
    /// domain holds (counted from admission, so racing calls cannot both
    /// pass the cap). The admin domain's own (`ody run --dispvm`) have none.
    private var callerOf: [String: String] = [:]
    private var heldBy: [String: Int] = [:]
    /// Disposables being created, not yet in `owned` (count toward the total).
    private var making = 0
    private let limitsSource = Mutex<@Sendable () -> ResourceLimits>({ .defaults })
    /// Where [limits] comes from (the daemon: its current config).
    public func setLimits(_ source: @escaping @Sendable () -> ResourceLimits) { limitsSource.withLock { $0 = source } }
    var limits: ResourceLimits { limitsSource.withLock { $0 }() }

    public init(store: DomainStore, volumes: VolumeManager, runtime: BrokerRuntime, logger: Logger) {
        self.store = store
        self.volumes = volumes
        self.runtime = runtime
        self.logger = logger
    }

    // MARK: public API

    /// A started, running disposable of `template` (nil: the global
    /// default_dispvm): a preloaded one when there is one, else a new one.
    /// The caller owns it: `destroy(_:)` it when done.
    /// Refused (.limit) when `caller` already holds [limits]
    /// dispvms_per_domain disposables, or dispvms_total are alive.
    public func acquire(template: String? = nil, caller: String? = nil) throws(OdysseyError) -> String {
        let t = try resolveTemplate(template)
        // Counted against `account`; `caller` stays the one tagged created-by-.
        let account = accountable(caller)
        try admit(account)
        var handedOut = false
        defer { if !handedOut { unadmit(account) } }
        if let name = takePreloaded(t) {
            do {
                try runtime.unpause(name)
                try? store.removeFeature("internal", of: name)
                handedOut = attribute(name, to: account)
                refill(t)
                return name
            } catch {
                logger.warning("preloaded disposable \(name) could not be resumed: \(error); making a new one")
                destroy(name)
            }
        }
        refill(t)
        let name = try create(t, caller: caller, preload: false)
        handedOut = attribute(name, to: account)
        return name
    }

    /// Books `name` to `caller` (counted until destroyed); false if it was
    /// destroyed meanwhile (it crashed): then the admission is given back.
    private func attribute(_ name: String, to caller: String?) -> Bool {
        monitor.withLock {
            guard owned.contains(name) else { return false }
            if let caller { callerOf[name] = caller }
            return true
        }
    }

    /// Who answers for a call from `caller`: a disposable's calls count
    /// against the domain it was made for, so a chain of disposables
    /// calling @dispvm shares one dispvms_per_domain budget.
    private func accountable(_ caller: String?) -> String? {
        guard let caller else { return nil }
        return monitor.withLock { callerOf[caller] ?? caller }
    }

    /// Counts a disposable against `caller`'s cap, or throws (.limit).
    private func admit(_ caller: String?) throws(OdysseyError) {
        guard let caller else { return }
        let cap = limits.dispvmsPerDomain
        let held: Int? = monitor.withLock {
            let n = heldBy[caller] ?? 0
            guard n < cap else { return n }
            heldBy[caller] = n + 1
            return nil
        }
        if let held {
            logger.warning("disposable for \(caller) refused: it holds \(held) (limit dispvms_per_domain = \(cap))")
            throw OdysseyError(.limit, "\(caller) already holds \(held) disposables (limit dispvms_per_domain = \(cap))")
        }
    }

    private func unadmit(_ caller: String?) {
        guard let caller else { return }
        monitor.withLock {
            let n = (heldBy[caller] ?? 1) - 1
            heldBy[caller] = n > 0 ? n : nil
        }
    }

    /// Disposables alive or being made, and the total cap (status, logs).
    public var usage: (alive: Int, total: Int) { (monitor.withLock { owned.count + making }, limits.dispvmsTotal) }

    /// Disposables `caller` holds now.
    public func held(by caller: String) -> Int { monitor.withLock { heldBy[caller] ?? 0 } }

    /// Runs `body` with a fresh (or preloaded) running disposable, destroyed
    /// afterwards whatever happens. For `ody run --dispvm[=T] -- CMD`:
    ///     try broker.disposables.withDisposable(template: t) { name in
    ///         try runtime.link(name).run(user:command:stdin:stdout:stderr:) }
    public func withDisposable<T>(template: String? = nil, caller: String? = nil,
                                  _ body: (String) throws -> T) throws -> T {
        let name = try acquire(template: template, caller: caller)
        defer { destroy(name) }
        return try body(name)
    }

    /// Kills (if running) and removes a disposable: store entry and volumes.
    public func destroy(_ name: String) {
        let mine: Bool = monitor.withLock {
            for (t, var p) in pools where p.contains(name) { p.removeAll { $0 == name }; pools[t] = p }
            guard owned.remove(name) != nil else { return false }
            if let c = callerOf.removeValue(forKey: name) {
                let n = (heldBy[c] ?? 1) - 1
                heldBy[c] = n > 0 ? n : nil
            }
            destroying.insert(name)
            return true
        }
        guard mine else { return }
        defer { monitor.withLock { _ = destroying.remove(name) } }
        // kill returns once the domain is halted and cleaned up; if it
        // throws, someone else is stopping it: sleep until that is done.
        if runtime.powerState(name) != .halted, (try? runtime.kill(name)) == nil,
           !runtime.waitUntilHalted(name, timeoutMs: Self.haltWaitMs) {
            logger.warning("disposable \(name) did not halt within \(Self.haltWaitMs / 1000) s; removing it anyway")
        }
        do throws(DomainError) {
            (runtime as? DomainRuntime)?.undefine(name)   // frees its uid range (vmm-native)
            if store.snapshot().contains(name) { try store.remove(name) }
        } catch {
            logger.error("removing disposable \(name) from the store: \(error)")
        }
        do throws(DomainError) { try volumes.removeVolumes(name) } catch {
            logger.error("removing the volumes of disposable \(name): \(error)")
        }
        logger.info("disposable \(name) destroyed")
    }

    /// A domain stopped (by the call's end, `ody kill`, a crash): if it is a
    /// disposable (ours, or any DispVM with auto_cleanup), remove it.
    public func domainHalted(_ name: String) {
        let (ours, busy) = monitor.withLock { (owned.contains(name), destroying.contains(name) || starting.contains(name)) }
        if busy { return }
        if !ours {
            let snap = store.snapshot()
            guard let d = try? snap.domain(name), d.klass == .dispVM,
                  (try? snap.property("auto_cleanup", of: name).value) == "True" else { return }
            monitor.withLock { _ = owned.insert(name) }
        }
        Threads.detach { [self] in destroy(name) }
    }

    /// Destroys `name` once the call on `port` of `target` ends: the target's
    /// agent reports MSG_CONNECTION_TERMINATED for it, either link closes
    /// (the domain stopped, the caller vanished), or the disposable halted.
    public func destroyAfterCall(_ name: String, target: AgentLink, port: UInt32, caller: AgentLink?) {
        Threads.detach { [self] in
            // Asleep on the target's link: its port release, its close (the
            // disposable halted) wake us at once. A caller that vanishes
            // without the session ending is noticed within a second.
            while true {
                if case .closed = target.state { break }
                if let caller, case .closed = caller.state { break }
                if !target.openPorts.contains(port) { break }
                if runtime.powerState(name) == .halted { break }
                target.waitPortFree(port, timeoutMs: 1000)
            }
            destroy(name)
        }
    }

    /// Preloaded disposables of `template`, ready (tests, listings).
    public func preloaded(_ template: String) -> [String] { monitor.withLock { pools[template] ?? [] } }

    /// Disposables alive now (ours).
    public var alive: [String] { monitor.withLock { owned.sorted() } }

    /// Fills the pools the store asks for and follows store changes.
    public func startPreloading() {
        let token = store.addObserver { [weak self] records in self?.noteChanges(records) }
        monitor.withLock { observer = token }
        for t in preloadTemplates() { refill(t) }
    }

    /// Stops following the store and destroys every disposable we hold.
    public func shutdown() {
        let (token, names): (ObserverToken?, [String]) = monitor.withLock {
            closed = true
            return (observer, Array(owned))
        }
        if let token { store.removeObserver(token) }
        for n in names { destroy(n) }
        // A preload being made finishes (and is destroyed) before we return:
        // the backends may be closed right after.
        waitForFills { filling.isEmpty }
        for n in monitor.withLock({ Array(owned) }) { destroy(n) }
    }

    /// How long a destroy waits for a disposable someone else is stopping.
    static let haltWaitMs = 60_000

    /// Sleeps (under `monitor`, at most a minute) until `done` holds; the
    /// fill threads broadcast when they finish.
    private func waitForFills(_ done: () -> Bool) {
        let deadline = Monitor.nowNs() + 60_000_000_000
        monitor.withLock {
            while !done() { if !monitor.wait(untilNs: deadline) { break } }
        }
    }

    // MARK: creating

    func resolveTemplate(_ template: String?) throws(OdysseyError) -> String {
        let snap = store.snapshot()
        var t = template ?? ""
        if t.isEmpty { t = (try? snap.globalProperty("default_dispvm").value) ?? "" }
        guard !t.isEmpty else { throw OdysseyError(.invalid, "no disposable template given and no default_dispvm set") }
        guard snap.contains(t) else { throw OdysseyError(.notFound, "no domain \(t)") }
        guard (try? snap.property("template_for_dispvms", of: t).value) == "True" else {
            throw OdysseyError(.invalid, "\(t) is not a disposable template (template_for_dispvms is not set)")
        }
        return t
    }

    private func create(_ template: String, caller: String?, preload: Bool) throws(OdysseyError) -> String {
        let total = limits.dispvmsTotal
        let alive: Int? = monitor.withLock {
            let n = owned.count + making
            guard n < total else { return n }
            making += 1
            return nil
        }
        if let alive {
            if !preload { logger.warning("disposable of \(template) for \(caller ?? "dom0") refused: \(alive) alive (limit dispvms_total = \(total))") }
            throw OdysseyError(.limit, "\(alive) disposables are alive (limit dispvms_total = \(total))")
        }
        let info: DomainInfo
        do throws(OdysseyError) {
            info = try mapped { () throws(DomainError) in try store.createDisposable(from: template, caller: caller) }
        } catch {
            monitor.withLock { making -= 1 }
            throw error
        }
        let name = info.name
        monitor.withLock { _ = owned.insert(name); _ = starting.insert(name); making -= 1 }
        do throws(OdysseyError) {
            defer { monitor.withLock { _ = starting.remove(name) } }
            try mapped { () throws(DomainError) in
                if preload { try store.setFeature("internal", of: name, to: "1") }
                try volumes.createVolumes(name, klass: .dispVM)
            }
            try runtime.start(name)
            if preload { try runtime.pause(name) }
        } catch {
            destroy(name)
            throw error
        }
        let now = usage
        logger.info("disposable \(name) of \(template) \(preload ? "preloaded" : "started for \(caller ?? "dom0")") (disposables alive \(now.alive) of \(now.total))")
        return name
    }

    // MARK: preloading

    private func takePreloaded(_ template: String) -> String? {
        monitor.withLock {
            guard var p = pools[template], !p.isEmpty else { return nil }
            let n = p.removeFirst()
            pools[template] = p
            return n
        }
    }

    /// How many preloads `template` should have.
    func preloadMax(_ template: String) -> Int {
        let snap = store.snapshot()
        guard (try? snap.property("template_for_dispvms", of: template).value) == "True" else { return 0 }
        // Clamped by [limits] preload_dispvm_max: the feature is settable by
        // whoever may set features on the template, not only the admin.
        let cap = limits.preloadDispvmMax
        if let v = try? snap.feature(Self.preloadFeature, of: template), let n = Int(v) { return max(0, min(n, cap)) }
        if (try? snap.globalProperty("default_dispvm").value) == template,
           let v = try? snap.feature(Self.preloadFeature, of: "dom0"), let n = Int(v) { return max(0, min(n, cap)) }
        return 0
    }

    private func preloadTemplates() -> [String] {
        let snap = store.snapshot()
        var out: [String] = []
        for d in snap.allDomains() where preloadMax(d.name) > 0 { out.append(d.name) }
        _ = snap
        return out
    }

    /// Brings the pool of `template` to its size in the background.
    func refill(_ template: String) {
        let want = preloadMax(template)
        let (extra, start): ([String], Bool) = monitor.withLock {
            if closed { return ([], false) }
            var p = pools[template] ?? []
            var extra: [String] = []
            while p.count > want { extra.append(p.removeLast()) }
            pools[template] = p
            guard p.count + (filling[template] ?? 0) < want, (filling[template] ?? 0) == 0 else { return (extra, false) }
            filling[template] = 1
            return (extra, true)
        }
        for n in extra { Threads.detach { [self] in destroy(n) } }
        guard start else { return }
        Threads.detach { [self] in
            defer { monitor.withLock { filling[template] = nil; monitor.broadcast() } }
            var failures = 0
            while failures < 3 {
                let need: Bool = monitor.withLock { !closed && (pools[template]?.count ?? 0) < preloadMax(template) }
                guard need else { break }
                do {
                    let name = try create(template, caller: nil, preload: true)
                    let keep: Bool = monitor.withLock {
                        guard !closed, !changed.contains(template) else { return false }
                        pools[template, default: []].append(name)
                        return true
                    }
                    if !keep { destroy(name) }
                } catch let e as OdysseyError where e.code == .limit {
                    // At the total cap: preloads wait for the next refill.
                    logger.notice("preloading a disposable of \(template) stopped: \(e.message)")
                    break
                } catch {
                    failures += 1
                    logger.warning("preloading a disposable of \(template): \(error)")
                }
            }
        }
    }

    /// Store observer: quick, never writes to the store (it holds its lock).
    private func noteChanges(_ records: [ChangeRecord]) {
        var touched: Set<String> = []
        var resize: Set<String> = []
        for r in records {
            guard let d = r.domain else { continue }
            switch r.kind {
            case .featureSet(let k, _, _) where k == Self.preloadFeature, .featureDelete(let k) where k == Self.preloadFeature:
                resize.insert(d)
            case .featureSet(let k, _, _) where k == "internal", .featureDelete(let k) where k == "internal":
                continue
            case .domainAdd, .domainDelete:
                continue
            case .propertySet(let n, _, _) where n == "default_dispvm", .propertyReset(let n, _) where n == "default_dispvm":
                resize.insert("dom0")
            default:
                touched.insert(d)
            }
        }
        guard !touched.isEmpty || !resize.isEmpty else { return }
        let (t, r) = (touched, resize)
        Threads.detach { [self] in templatesChanged(t, resize: r) }
    }

    private func templatesChanged(_ touched: Set<String>, resize: Set<String>) {
        let snap = store.snapshot()
        let templates: [String] = monitor.withLock { Array(pools.keys) }
        var stale: [String] = []
        for t in templates {
            let base = (try? snap.domain(t))?.template
            if touched.contains(t) || (base.map { touched.contains($0) } ?? false) { stale.append(t) }
        }
        for t in stale {
            let old: [String] = monitor.withLock { changed.insert(t); defer { pools[t] = [] }; return pools[t] ?? [] }
            logger.info("disposable template \(t) changed: refreshing \(old.count) preloaded")
            for n in old { destroy(n) }
            // Wait for a fill in progress to finish (it drops what it made), then refill.
            waitForFills { filling[t] == nil }
            monitor.withLock { _ = changed.remove(t) }
            refill(t)
        }
        if !resize.isEmpty {
            var all = Set(templates)
            for t in resize where t != "dom0" { all.insert(t) }
            if resize.contains("dom0"), let d = try? snap.globalProperty("default_dispvm").value, !d.isEmpty { all.insert(d) }
            for t in all { refill(t) }
        }
    }
}
#endif
