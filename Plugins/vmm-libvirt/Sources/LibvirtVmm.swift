// One opened "libvirt" vmm instance: a libvirt connection to the configured
// URI plus its lifecycle-event registration. libvirt connections are
// thread-safe, so operations run concurrently; the lock guards only our own
// state (the connection pointer, the callback id, the closed flag), and each
// operation holds its own reference on the connection while it runs.
import CLibvirt
import Glibc
import PluginABI
import PluginKit
import LibvirtDomainXML

final class LibvirtVmm: @unchecked Sendable {
    let host: HostServices
    /// libvirt's calls (loaded by the first open in this process).
    let virt: LibvirtAPI
    let uri: String
    let defaultDomainType: String
    let shutdownTimeout: Int
    /// `[vmm.libvirt] owner`: the name this odysseyd's domains carry in their
    /// metadata; everything else on the libvirtd is left alone.
    let owner: String
    /// Seconds between the state watch's looks (StateWatch.swift); 0: no watch.
    let stateWatchInterval: Double
    /// First uid of the per-domain QEMU users (QemuUsers.swift) and their
    /// group (libvirt-qemu's); nil: QEMU runs as libvirt's configured user.
    let qemuUidStart: UInt32?
    let qemuGid: UInt32?
    /// The state each domain was last reported in, by an event or the watch.
    let reported = ReportedStates()
    private let lock = PluginLock()
    /// Serialises lookup+define so one instance never overwrites a definition it just checked.
    let defineLock = PluginLock()
    private var conn: OpaquePointer?
    private var callbackID: Int32 = -1
    private var closed = false
    /// Each defined domain's per-start files, by name (also in its metadata,
    /// which is read when a domain defined by an earlier odysseyd stops).
    private var plans: [String: StartPlan] = [:]

    private init(host: HostServices, virt: LibvirtAPI, uri: String, defaultDomainType: String, shutdownTimeout: Int,
                 stateWatchInterval: Double, owner: String, qemuUidStart: UInt32?, qemuGid: UInt32?) {
        self.owner = owner
        self.qemuUidStart = qemuUidStart
        self.qemuGid = qemuGid
        self.host = host
        self.virt = virt
        self.uri = uri
        self.defaultDomainType = defaultDomainType
        self.shutdownTimeout = shutdownTimeout
        self.stateWatchInterval = stateWatchInterval
    }

    // MARK: open / close

    /// Reads the instance config ([vmm.libvirt]) and loads libvirt if this is
    /// the process's first instance; the connection comes with the first call.
    static func open(host: HostServices, err: UnsafeMutablePointer<ody_error>?) -> Result<LibvirtVmm, ReportedError> {
        let uri = host.config("uri") ?? "qemu:///system"
        guard !uri.isEmpty else { return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.libvirt] uri must not be empty"))) }
        var timeout = 60
        if let t = host.config("shutdown_timeout") {
            guard let v = Int(t), v > 0 else {
                return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.libvirt] shutdown_timeout \"\(t)\" must be a positive number of seconds")))
            }
            timeout = v
        }
        var watch = 2.0
        if let t = host.config("state_poll_interval") {
            guard let v = Double(t), v >= 0, v <= 3600 else {
                return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.libvirt] state_poll_interval \"\(t)\" must be seconds from 0 (no state watch) to 3600")))
            }
            watch = v
        }
        let owner = host.config("owner") ?? "odyssey"
        guard !owner.isEmpty, owner.utf8.count <= 64,
              owner.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }) else {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.libvirt] owner \"\(owner)\" must be 1-64 of [A-Za-z0-9._-]")))
        }
        let type = host.config("domain_type").flatMap { $0.isEmpty ? nil : $0 }
            ?? (uri.hasPrefix("test:") ? "test" : HardwareVirt.usable ? "kvm" : "qemu")
        // Per-domain QEMU uids, in libvirt-qemu's group (the images VMs
        // share are readable by it); without that group (QEMU as root),
        // there is no confined QEMU to give uids to.
        var uidStart: UInt32? = 900_000
        if let t = host.config("qemu_uid_start") {
            guard let v = UInt32(t), v == 0 || (v >= 1000 && UInt64(v) + UInt64(QemuUsers.count) < UInt64(UInt32.max)) else {
                return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.libvirt] qemu_uid_start \"\(t)\" must be 0 (off) or a uid from 1000 with room for \(QemuUsers.count) after it")))
            }
            uidStart = v == 0 ? nil : v
        }
        var qemuGid: UInt32?
        if uidStart != nil, type != "test" {
            if let g = getgrnam("libvirt-qemu") { qemuGid = g.pointee.gr_gid } else {
                host.log(ODY_LOG_INFO, "no libvirt-qemu group (QEMU runs as libvirt's configured user): VMs get no QEMU uid of their own")
                uidStart = nil
            }
        } else {
            uidStart = nil
        }
        let virt: LibvirtAPI
        do throws(LibraryError) { virt = try LibvirtAPI.shared.get() } catch {
            return .failure(ReportedError(fail(err, ODY_E_BACKEND, error.message)))
        }
        // The connection is opened by the first operation (and again after
        // libvirtd restarts): odysseyd starts even while libvirtd is down.
        let vmm = LibvirtVmm(host: host, virt: virt, uri: uri, defaultDomainType: type, shutdownTimeout: timeout,
                             stateWatchInterval: watch, owner: owner, qemuUidStart: uidStart, qemuGid: qemuGid)
        if watch > 0 { StateWatch.start(vmm, interval: watch) }
        host.log(ODY_LOG_INFO, "libvirt at \(uri) (domain type \(type)\(type == "qemu" ? ": TCG, no usable KVM" : ""), shutdown timeout \(timeout) s)")
        return .success(vmm)
    }

    /// Opens the connection and registers the lifecycle callback; nil on success.
    private func connectLocked(_ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
        guard let c = virt.virConnectOpen(uri) else {
            let hint = uri.hasPrefix("test:") ? "" : " (is libvirtd running? start it with scripts/libvirtd-up)"
            return virt.fail(err, "cannot connect to libvirt at \(uri)\(hint)")
        }
        let me = Unmanaged.passRetained(self).toOpaque()
        let id = virt.virConnectDomainEventRegisterAny(c, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
                                                  unsafeBitCast(lifecycleCallback, to: virConnectDomainEventGenericCallback.self),
                                                  me, lifecycleRelease)
        guard id >= 0 else {
            let rc = virt.fail(err, "cannot register for lifecycle events on \(uri)")
            Unmanaged<LibvirtVmm>.fromOpaque(me).release()
            _ = virt.virConnectClose(c)
            return rc
        }
        conn = c
        callbackID = id
        adoptPlansLocked(c)
        return nil
    }

    /// Reads the per-start plans of every defined domain that has one (ours,
    /// from an earlier odysseyd too), so a stop seen by the event thread
    /// cleans up without a libvirt call there. A VM that kept running while
    /// odysseyd restarted is cleaned up after like one started by this instance.
    private func adoptPlansLocked(_ c: OpaquePointer) {
        let listed = virt.forEachDomain(c) { d, name in
            guard plans[name] == nil else { return }
            guard let p = virt.virDomainGetMetadata(d, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), StartPlan.namespace, 0) else {
                virt.virResetLastError()  // not one of ours
                return
            }
            defer { free(p) }
            guard let plan = StartPlan.read(metadata: String(cString: p)), plan.owner == owner else { return }
            plans[name] = plan
            // The watch's baseline: a change after this moment is reported
            // even if it happens before the watch's first look.
            var state: Int32 = 0, reason: Int32 = 0
            if virt.virDomainGetState(d, &state, &reason, 0) == 0 {
                reported.record(name, StateWatch.state(state, reason))
            } else {
                virt.virResetLastError()
            }
        }
        if !listed { virt.virResetLastError() }
    }

    private func disconnectLocked() {
        guard let c = conn else { return }
        if callbackID >= 0 { _ = virt.virConnectDomainEventDeregisterAny(c, callbackID) }
        virt.virResetLastError()
        _ = virt.virConnectClose(c)
        conn = nil
        callbackID = -1
    }

    var isClosed: Bool { lock.with { closed } }
    /// Whether an operation has connected (the watch does not connect first).
    var isConnected: Bool { lock.with { conn != nil } }

    func close() {
        lock.with {
            closed = true
            disconnectLocked()
        }
    }

    // MARK: connection and domain access

    /// Runs `body` with a referenced connection, reconnecting once if libvirt
    /// dropped it (e.g. libvirtd restarted).
    func withConnection(_ what: String, _ err: UnsafeMutablePointer<ody_error>?, _ body: (OpaquePointer) -> Int32) -> Int32 {
        var failed: Int32?
        let c: OpaquePointer? = lock.with {
            if closed { failed = fail(err, ODY_E_STATE, "\(what): instance is closed"); return nil }
            if let c = conn, virt.virConnectIsAlive(c) == 1 { _ = virt.virConnectRef(c); return c }
            if conn != nil { host.log(ODY_LOG_WARNING, "connection to \(uri) lost; reconnecting") }
            disconnectLocked()
            if let rc = connectLocked(err) { failed = rc; return nil }
            _ = virt.virConnectRef(conn!)
            return conn
        }
        guard let c else { return failed ?? fail(err, ODY_E_BACKEND, "\(what): no connection") }
        defer { _ = virt.virConnectClose(c) }
        return body(c)
    }

    /// Runs `body` with domain `name` looked up (NOT_FOUND if there is none).
    func withDomain(_ name: String, _ what: String, _ err: UnsafeMutablePointer<ody_error>?, _ body: (OpaquePointer) -> Int32) -> Int32 {
        withConnection(what, err) { c in
            guard let dom = virt.virDomainLookupByName(c, name) else { return virt.fail(err, what) }
            defer { _ = virt.virDomainFree(dom) }
            return body(dom)
        }
    }

    // MARK: per-start files

    func rememberPlan(_ name: String, _ plan: StartPlan?) { lock.with { plans[name] = plan } }
    func cachedPlan(_ name: String) -> StartPlan? { lock.with { plans[name] } }

    /// The domain's plan: cached, else read from its metadata (and cached).
    func plan(_ dom: OpaquePointer, _ name: String) -> StartPlan? {
        if let p = cachedPlan(name) { return p }
        guard let p = virt.virDomainGetMetadata(dom, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), StartPlan.namespace, 0) else {
            virt.virResetLastError()
            return nil
        }
        defer { free(p) }
        let plan = StartPlan.read(metadata: String(cString: p))
        if plan == nil { host.log(ODY_LOG_WARNING, "\(name): unreadable odyssey metadata; its per-start files are left alone") }
        // Only our own domains are remembered (the state watch follows those).
        if plan?.owner == owner { rememberPlan(name, plan) }
        return plan
    }

    /// Removes a stopped domain's per-start files. Safe to repeat.
    func removeRunFiles(_ name: String, _ plan: StartPlan?) {
        guard let plan, !plan.files.isEmpty else { return }
        RunFiles.remove(plan)
    }

    // MARK: states and events

    static func powerState(_ state: Int32, _ reason: Int32) -> ody_power_state {
        switch UInt32(bitPattern: state) {
        case VIR_DOMAIN_RUNNING.rawValue, VIR_DOMAIN_BLOCKED.rawValue: ODY_STATE_RUNNING
        case VIR_DOMAIN_PAUSED.rawValue:
            UInt32(bitPattern: reason) == VIR_DOMAIN_PAUSED_STARTING_UP.rawValue ? ODY_STATE_TRANSIENT : ODY_STATE_PAUSED
        case VIR_DOMAIN_SHUTDOWN.rawValue: ODY_STATE_HALTING
        case VIR_DOMAIN_SHUTOFF.rawValue: ODY_STATE_HALTED
        case VIR_DOMAIN_CRASHED.rawValue: ODY_STATE_CRASHED
        case VIR_DOMAIN_PMSUSPENDED.rawValue: ODY_STATE_SUSPENDED
        default: ODY_STATE_NA
        }
    }

    /// Called on the libvirt event thread.
    /// A stopped domain's per-start files go before the host hears of it, so
    /// a host that sees Halted or Crashed finds the run directory clean. The
    /// plan is in memory (defined here, or read at connect), so the event
    /// thread makes no libvirt call; a domain without one is not ours.
    func deliverLifecycle(domain: String, event: Int32, detail: Int32) {
        guard let state = LifecycleMap.state(event: event, detail: detail) else { return }
        reported.record(domain, state)
        if UInt32(bitPattern: event) == VIR_DOMAIN_EVENT_STOPPED.rawValue { removeRunFiles(domain, cachedPlan(domain)) }
        host.emitLifecycle(domain: domain, state: state, detail: event,
                           message: LifecycleMap.describe(event: event, detail: detail))
    }
}

extension ody_power_state {
    var name: String {
        switch self {
        case ODY_STATE_HALTED: "halted"
        case ODY_STATE_TRANSIENT: "starting"
        case ODY_STATE_RUNNING: "running"
        case ODY_STATE_HALTING: "halting"
        case ODY_STATE_DYING: "dying"
        case ODY_STATE_CRASHED: "crashed"
        case ODY_STATE_PAUSED: "paused"
        case ODY_STATE_SUSPENDED: "suspended"
        default: "in no known state"
        }
    }
}
