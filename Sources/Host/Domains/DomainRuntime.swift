// Runs domains: the one place that ties a domain's life together.
//
//   start     store facts -> volumes.prepareStart (root/private/run paths)
//             -> AgentLink (listens on the domain's control channel first, so
//             the agent connects on its first try; after vmm.start for a vchan
//             whose peer must exist, as Xen's) -> vmm.define + vmm.start
//             -> wait for the agent's HELLO (qrexec_timeout) -> Running.
//   stop      vmm.shutdown/kill -> link closed -> volumes.cleanupAfterStop
//             (AppVM root discarded, private revision kept).
//   crash     a Halted/Crashed lifecycle event for a domain we run (its init
//             exited) cleans up the same way; nothing is left behind.
//
// Runtime facts (which domains run, their links) live here, never in the
// store: after a daemon restart, `adopt` asks the backends what still runs.
import Domains
import Logging
import PluginABI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class DomainRuntime: DomainLifecycle, @unchecked Sendable {
    struct Running {
        var vmm: String
        var link: AgentLink
        var paused = false
        var stopping = false
        /// UNIX time of the start (nil: adopted at the daemon's start, when it is not known).
        var startedAt: Double? = nil
    }

    let store: DomainStore
    let volumes: VolumeManager
    let backends: @Sendable () -> Backends
    let logger: Logger
    let agentPath: String
    let domainRpcDir: String?
    /// The add-ons view, read-only at /.odyssey/addons in every domain.
    let addonView: String?
    /// The guest kernel pool (OdysseyConfig.kernelDir).
    let kernelDir: String
    /// Receives the service requests (TRIGGER_SERVICE3/4) agents forward,
    /// validated, with the source set from the link: the qrexec broker.
    public typealias TriggerHandler = @Sendable (AgentLink, AgentLink.ServiceRequest) -> Void
    private let triggerHandler = Mutex<TriggerHandler?>(nil)
    public func setTriggerHandler(_ h: @escaping TriggerHandler) { triggerHandler.withLock { $0 = h } }

    /// Serialises start/stop of the same domain; reads never wait on it.
    private let lifecycleLock = Mutex<Set<String>>([])
    private let running = Mutex<[String: Running]>([:])
    /// Broadcast whenever a domain leaves `running` or its after-stop
    /// cleanup ends, so waiters sleep until that event instead of polling
    /// (issue 11, finding 13). Lock order: `stops`, then `running`.
    private let stops = Monitor()
    /// Domains whose after-stop cleanup is in progress (it may run on the
    /// backend's event thread): starts and stops wait for it to finish.
    /// Guarded by `stops`.
    private var cleaning: Set<String> = []
    /// How long a start or stop waits for an earlier cleanup of the same domain.
    static let cleanupWaitMs = 60_000
    /// Memory limits of running domains, against host RAM minus the reserve.
    let memory = MemoryBudget()
    private let limitsSource = Mutex<@Sendable () -> ResourceLimits>({ .defaults })
    /// Where [limits] comes from (the daemon: its current config).
    public func setLimits(_ source: @escaping @Sendable () -> ResourceLimits) { limitsSource.withLock { $0 = source } }
    var limits: ResourceLimits { limitsSource.withLock { $0 }() }
    /// MiB committed to running domains and what may be committed (status, logs).
    public var memoryUsage: (committedMiB: UInt64, capacityMiB: UInt64) {
        (memory.committedMiB, memory.capacityMiB(reserveMiB: limits.memoryReserveMiB))
    }

    /// Where the agent sits inside every domain (the shared /.odyssey/bin).
    public static let agentPathInDomain = DomainDescriptionBuilder.agentPathInDomain
    public static let callClientInDomain = GuestBin.pathInDomain + "/ody-call"

    public init(store: DomainStore, volumes: VolumeManager, backends: @escaping @Sendable () -> Backends,
                events: EventBus, logger: Logger, agentPath: String, domainRpcDir: String? = nil, addonView: String? = nil,
                kernelDir: String = "/var/lib/odyssey/vm-kernels") {
        self.kernelDir = kernelDir
        self.store = store
        self.volumes = volumes
        self.backends = backends
        self.logger = logger
        self.agentPath = agentPath
        self.domainRpcDir = domainRpcDir
        self.addonView = addonView
        events.subscribe { [weak self] e in
            guard e.kind == .lifecycle, e.state == .halted || e.state == .crashed, let runtime = self else { return }
            // Cleanup does I/O; never run it on the plugin's event thread.
            Threads.detach { runtime.domainStopped(e.domain, state: e.state) }
        }
    }

    // MARK: DomainLifecycle

    public func powerState(_ name: String) -> PowerState {
        running.withLock { r in
            guard let d = r[name] else { return name == "dom0" ? .running : .halted }
            if d.stopping { return .halting }
            if d.paused { return .paused }
            if case .ready = d.link.state { return .running }
            return .transient
        }
    }

    public func startTime(_ name: String) -> Double? { running.withLock { $0[name]?.startedAt } }

    static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec / 1000) / 1e6
    }

    public func currentState(_ name: String) -> DomainCurrentState {
        let state = powerState(name)
        guard let vmmName = running.withLock({ $0[name]?.vmm }),
              let info = try? backends().vmm(vmmName).info(name) else { return DomainCurrentState(state: state) }
        return DomainCurrentState(state: state, memoryKiB: info.memoryKiB, maxmemKiB: info.maxmemKiB, cputimeNs: info.cputimeNs)
    }

    public func start(_ name: String) throws(OdysseyError) {
        try exclusive(name) { () throws(OdysseyError) in try startLocked(name) }
    }

    public func shutdown(_ name: String, wait: Bool) throws(OdysseyError) {
        try exclusive(name) { () throws(OdysseyError) in
            let vmm = try runningVmm(name)
            markStopping(name)
            do throws(OdysseyError) { try backends().vmm(vmm).shutdown(name, wait: wait) } catch {
                unmarkStopping(name)
                throw error
            }
            if wait { domainStopped(name, state: .halted); waitUntilCleaned(name) }
        }
    }

    public func kill(_ name: String) throws(OdysseyError) {
        try exclusive(name) { () throws(OdysseyError) in
            let vmm = try runningVmm(name)
            markStopping(name)
            try backends().vmm(vmm).kill(name)
            domainStopped(name, state: .halted)
            waitUntilCleaned(name)
        }
    }

    public func pause(_ name: String) throws(OdysseyError) {
        let vmm = try runningVmm(name)
        try backends().vmm(vmm).pause(name)
        running.withLock { $0[name]?.paused = true }
    }

    public func unpause(_ name: String) throws(OdysseyError) {
        let vmm = try runningVmm(name)
        try backends().vmm(vmm).unpause(name)
        running.withLock { $0[name]?.paused = false }
    }

    /// The control link of a running domain (for `ody run` and the broker).
    public func link(_ name: String) throws(OdysseyError) -> AgentLink {
        guard let l = running.withLock({ $0[name]?.link }) else { throw OdysseyError(.state, "\(name) is not running") }
        return l
    }

    public var runningNames: [String] { running.withLock { $0.keys.sorted() } }

    // MARK: restart of the daemon

    /// After a daemon restart: domains the backends still run are adopted
    /// (their agents reconnect to a fresh control channel); a domain whose
    /// agent does not come back within qrexec_timeout is killed and cleaned
    /// up, and so is anything a backend runs that the store does not know.
    public func adoptRunningDomains() {
        let snap = store.snapshot()
        let known = Dictionary(uniqueKeysWithValues: snap.allDomains().compactMap { d in d.vmm.map { (d.name, $0) } })
        for vmmName in Set(known.values).sorted() {
            guard let vmm = try? backends().vmm(vmmName), let names = try? vmm.list() else { continue }
            for name in names {
                guard let info = try? vmm.info(name), info.state == .running || info.state == .paused else {
                    // A stale definition nobody owns, or one its domain moved away from.
                    if known[name] != vmmName { try? vmm.undefine(name) }
                    continue
                }
                guard known[name] == vmmName else {
                    logger.warning("\(vmmName) runs \(name), which the store does not know: killing it")
                    try? vmm.kill(name); try? vmm.undefine(name)
                    continue
                }
                adopt(name, vmm: vmmName, paused: info.state == .paused, snap)
            }
        }
    }

    private func adopt(_ name: String, vmm vmmName: String, paused: Bool, _ snap: DomainsSnapshot) {
        let handler: TriggerHandler? = triggerHandler.withLock { $0 }
        guard let vmm = try? backends().vmm(vmmName), let (vchan, _) = try? backends().vchan(for: name, vmm: vmm),
              let link = try? AgentLink(domain: name, vchan: vchan, logger: logger, onTrigger: handler) else {
            logger.error("cannot listen for the agent of running \(name): killing it")
            try? backends().vmm(vmmName).kill(name)
            return
        }
        running.withLock { $0[name] = Running(vmm: vmmName, link: link, paused: paused) }
        if let mem = try? intProperty("memory", of: name, snap), let max = try? intProperty("maxmem", of: name, snap) {
            memory.adopt(name, mib: MemoryBudget.limitMiB(memory: UInt64(clamping: mem), maxmem: UInt64(clamping: max)))
        }
        let timeout = (try? intProperty("qrexec_timeout", of: name, snap)) ?? 60
        Threads.detach { [self] in
            do throws(OdysseyError) {
                try link.waitReady(timeoutMs: timeout * 1000)
                logger.notice("re-adopted running \(name) (\(vmmName)); its agent reconnected")
            } catch {
                logger.error("running \(name) was found, but its agent did not reconnect (\(error)): killing it")
                markStopping(name)
                try? backends().vmm(vmmName).kill(name)
                domainStopped(name, state: .halted)
            }
        }
    }

    // MARK: start

    private func startLocked(_ name: String) throws(OdysseyError) {
        waitUntilCleaned(name)
        let snap = store.snapshot()
        let d = try mapped { () throws(DomainError) in try snap.domain(name) }
        guard d.klass != .adminVM else { throw OdysseyError(.invalid, "\(name) is the admin domain; it is always running") }
        guard running.withLock({ $0[name] == nil }) else { throw OdysseyError(.state, "\(name) is already running") }
        if let why = try? snap.feature("prohibit-start", of: name), !why.isEmpty {
            throw OdysseyError(.state, "\(name) has the feature prohibit-start set")
        }
        try checkTemplateConflicts(d, snap)

        guard let vmmName = d.vmm else { throw OdysseyError(.invalid, "\(name) has no isolation provider (vmm)") }
        let vmm = try backends().vmm(vmmName)
        // Negative numbers would trap in the conversions below: refuse them.
        let (memoryMiB, maxmemMiB, vcpus) = (try intProperty("memory", of: name, snap), try intProperty("maxmem", of: name, snap),
                                             try intProperty("vcpus", of: name, snap))
        guard memoryMiB >= 0, maxmemMiB >= 0, vcpus >= 0, vcpus <= Int(UInt32.max) else {
            throw OdysseyError(.invalid, "\(name): memory, maxmem and vcpus must not be negative")
        }
        // 0 and 0 would mean no memory limit at all (and nothing committed);
        // the store refuses 0 today, this keeps a hand-edited store honest.
        guard memoryMiB > 0 || maxmemMiB > 0 else {
            throw OdysseyError(.invalid, "\(name): memory and maxmem are both 0: it would run without a memory limit")
        }
        guard vmm.factory.opsVersion >= 2 else {
            throw OdysseyError(.unsupported, "vmm '\(vmmName)' was built for ABI 1.\(vmm.factory.opsVersion): it cannot read a domain description (1.2)")
        }
        // The host says what the domain is; the provider decides how. Which
        // channel and which volume form follow from the provider's capabilities.
        let (vchan, channel) = try backends().vchan(for: name, vmm: vmm)
        let form: StartForm = vmm.has(ODY_VMM_CAP_BLOCK_VOLUMES) ? .image : .tree
        let plan = try mapped { () throws(DomainError) in try volumes.prepareStart(name, in: snap, form: form) }
        let description: DomainDescriptionSpec
        do throws(OdysseyError) {
            let bin = try GuestBin.refresh(stateDir: volumes.stateDir, agentPath: agentPath)
            let builder = DomainDescriptionBuilder(guestBin: bin, domainRpcDir: domainRpcDir, addonView: addonView, kernelDir: kernelDir)
            description = try builder.build(name, snap, plan: plan, channel: channel, bootsKernel: vmm.has(ODY_VMM_CAP_HARDWARE_VIRT))
        } catch {
            _ = try? volumes.cleanupAfterStop(name, in: store.snapshot())
            throw error
        }

        let handler: TriggerHandler? = triggerHandler.withLock { $0 }
        // Listen first, so the agent connects on its first try; a vchan that
        // can only serve an existing domain (PEER_MUST_EXIST) listens right
        // after the vmm's start instead, and the agent retries until then.
        var early: AgentLink?
        if !vchan.peerMustExist {
            do throws(OdysseyError) { early = try AgentLink(domain: name, vchan: vchan, logger: logger, onTrigger: handler) } catch {
                _ = try? volumes.cleanupAfterStop(name, in: store.snapshot())
                throw error
            }
        }
        let spec = DomainSpec(name: name, uuid: "\(d.uuid)", memoryMiB: UInt64(memoryMiB), maxmemMiB: UInt64(maxmemMiB),
                              vcpus: UInt32(vcpus), description: description)
        let reserve = limits.memoryReserveMiB
        do throws(OdysseyError) {
            try memory.commit(name, mib: MemoryBudget.limitMiB(memory: spec.memoryMiB, maxmem: spec.maxmemMiB), reserveMiB: reserve)
        } catch {
            logger.warning("start of \(name) refused: \(error.message)")
            early?.close(reason: "start refused")
            _ = try? volumes.cleanupAfterStop(name, in: store.snapshot())
            throw error
        }
        do throws(OdysseyError) {
            try? vmm.undefine(name)   // a definition left by a crash; params may have changed
            // `ody prefs D vmm X` moved D: the provider it left forgets it
            // (native keeps a uid range reserved while a definition exists).
            for other in backends().openVmms where other != vmmName { try? backends().vmm(other).undefine(name) }
            try vmm.define(spec)
            try vmm.start(name)
            let link: AgentLink
            if let early { link = early } else {
                link = try AgentLink(domain: name, vchan: vchan, logger: logger, onTrigger: handler)
                early = link
            }
            running.withLock { $0[name] = Running(vmm: vmmName, link: link, startedAt: Self.wallClock()) }
            let timeout = (try? intProperty("qrexec_timeout", of: name, snap)) ?? 60
            try link.waitReady(timeoutMs: timeout * 1000)
            logger.info("\(name) started (\(vmmName)), agent ready; memory committed \(memory.committedMiB)/\(memory.capacityMiB(reserveMiB: reserve)) MiB")
        } catch {
            logger.error("start of \(name) failed: \(error)")
            try? vmm.kill(name)
            memory.release(name)
            stops.withLock {
                running.withLock { _ = $0.removeValue(forKey: name) }
                stops.broadcast()
            }
            early?.close(reason: "start failed")
            _ = try? volumes.cleanupAfterStop(name, in: store.snapshot())
            throw error
        }
    }

    /// A TemplateVM with a persistent root must not run while domains based
    /// on it run: their read-only lower layer would change under them.
    private func checkTemplateConflicts(_ d: DomainInfo, _ snap: DomainsSnapshot) throws(OdysseyError) {
        let names = Set(runningNames)
        if d.klass == .templateVM {
            let busy = snap.children(of: d.name).filter { names.contains($0) }
            if !busy.isEmpty { throw OdysseyError(.state, "\(d.name) is a template in use by running \(busy.sorted().joined(separator: ", "))") }
        } else if let t = d.template, names.contains(t) {
            throw OdysseyError(.state, "template \(t) of \(d.name) is running; shut it down first")
        }
    }

    // MARK: stop

    /// The domain halted (by request, by itself, or crashed): close its link
    /// and clean its volumes. Idempotent.
    func domainStopped(_ name: String, state: PowerState) {
        // Whoever removes the domain from `running` does the cleanup, once;
        // it is marked `cleaning` in the same step, so no start slips between.
        guard let r = stops.withLock({ () -> Running? in
            guard let r = running.withLock({ $0.removeValue(forKey: name) }) else { return nil }
            cleaning.insert(name)
            return r
        }) else { return }
        defer { stops.withLock { _ = cleaning.remove(name); stops.broadcast() } }
        memory.release(name)
        r.link.close(reason: "domain \(state.rawValue.lowercased())")
        do {
            _ = try volumes.cleanupAfterStop(name, in: store.snapshot())
        } catch {
            logger.error("cleanup after stop of \(name): \(error)")
        }
        if !r.stopping { logger.warning("\(name) stopped by itself (\(state.rawValue))") }
    }

    /// Waits (bounded) until an after-stop cleanup of `name` has finished:
    /// asleep on `stops` until the cleanup says it is done, never polling.
    private func waitUntilCleaned(_ name: String) {
        let deadline = Monitor.nowNs() + Int64(Self.cleanupWaitMs) * 1_000_000
        stops.withLock {
            while cleaning.contains(name) { if !stops.wait(untilNs: deadline) { break } }
        }
    }

    /// Waits until `name` is halted and cleaned up (another thread is
    /// stopping it); false if that has not happened within `timeoutMs`.
    public func waitUntilHalted(_ name: String, timeoutMs: Int) -> Bool {
        let deadline = Monitor.nowNs() + Int64(timeoutMs) * 1_000_000
        return stops.withLock {
            while running.withLock({ $0[name] != nil }) || cleaning.contains(name) {
                if !stops.wait(untilNs: deadline) { return false }
            }
            return true
        }
    }

    /// A domain is leaving the store: its backend definition goes too (a
    /// native definition reserves a 65,536-uid range until it is undefined).
    /// Call before the store forgets which backend the domain used.
    public func undefine(_ name: String) {
        guard let v = try? store.snapshot().domain(name).vmm, let vmm = try? backends().vmm(v) else { return }
        try? vmm.undefine(name)
    }

    private func runningVmm(_ name: String) throws(OdysseyError) -> String {
        if let v = running.withLock({ $0[name]?.vmm }) { return v }
        _ = try mapped { () throws(DomainError) in try store.domain(name) }   // unknown name: not-found error
        throw OdysseyError(.state, "\(name) is not running")
    }

    private func markStopping(_ name: String) { running.withLock { $0[name]?.stopping = true } }
    private func unmarkStopping(_ name: String) { running.withLock { $0[name]?.stopping = false } }

    // MARK: helpers

    private func exclusive(_ name: String, _ body: () throws(OdysseyError) -> Void) throws(OdysseyError) {
        let got = lifecycleLock.withLock { $0.insert(name).inserted }
        guard got else { throw OdysseyError(.state, "\(name) is already starting or stopping") }
        defer { lifecycleLock.withLock { _ = $0.remove(name) } }
        try body()
    }

    private func intProperty(_ p: String, of name: String, _ snap: DomainsSnapshot) throws(OdysseyError) -> Int {
        let v = try mapped { () throws(DomainError) in try snap.property(p, of: name).value }
        guard let n = Int(v) else { throw OdysseyError(.invalid, "\(name): property \(p) is '\(v)', not a number") }
        return n
    }
}

/// Store errors become host errors, keeping their Qubes exception type.
func mapped<T>(_ body: () throws(DomainError) -> T) throws(OdysseyError) -> T {
    do { return try body() } catch {
        let code: OdysseyError.Code = switch error.qubesType {
        case "QubesVMNotFoundError", "QubesLabelNotFoundError": .notFound
        case "QubesNoSuchPropertyError", "QubesValueError", "QubesPropertyValueError": .invalid
        case "QubesVMInUseError": .state
        default: .invalid
        }
        throw OdysseyError(code, error.message, cause: error.qubesType)
    }
}
