// One opened "libvirt" vmm instance: a libvirt connection to the configured
// URI plus its lifecycle-event registration. libvirt connections are
// thread-safe, so operations run concurrently; the lock guards only our own
// state (the connection pointer, the callback id, the closed flag), and each
// operation holds its own reference on the connection while it runs.
import CLibvirt
import Glibc
import PluginABI
import PluginKit

final class LibvirtVmm: @unchecked Sendable {
    let host: HostServices
    /// libvirt's calls (loaded by the first open in this process).
    let virt: LibvirtAPI
    let uri: String
    let defaultDomainType: String
    let shutdownTimeout: Int
    private let lock = PluginLock()
    /// Serialises lookup+define so one instance never overwrites a definition it just checked.
    private let defineLock = PluginLock()
    private var conn: OpaquePointer?
    private var callbackID: Int32 = -1
    private var closed = false

    private init(host: HostServices, virt: LibvirtAPI, uri: String, defaultDomainType: String, shutdownTimeout: Int) {
        self.host = host
        self.virt = virt
        self.uri = uri
        self.defaultDomainType = defaultDomainType
        self.shutdownTimeout = shutdownTimeout
    }

    // MARK: open / close

    /// Reads the instance config ([vmm.libvirt]), loads libvirt if this is the
    /// process's first instance, and connects.
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
        let type = host.config("domain_type").flatMap { $0.isEmpty ? nil : $0 } ?? (uri.hasPrefix("test:") ? "test" : "qemu")
        let virt: LibvirtAPI
        do throws(LibraryError) { virt = try LibvirtAPI.shared.get() } catch {
            return .failure(ReportedError(fail(err, ODY_E_BACKEND, error.message)))
        }
        let vmm = LibvirtVmm(host: host, virt: virt, uri: uri, defaultDomainType: type, shutdownTimeout: timeout)
        if let rc = vmm.lock.with({ vmm.connectLocked(err) }) { return .failure(ReportedError(rc)) }
        host.log(ODY_LOG_INFO, "connected to \(uri) (domain type \(type), shutdown timeout \(timeout) s)")
        return .success(vmm)
    }

    /// Opens the connection and registers the lifecycle callback; nil on success.
    private func connectLocked(_ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
        guard let c = virt.virConnectOpen(uri) else { return virt.fail(err, "cannot connect to libvirt at \(uri)") }
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
        return nil
    }

    private func disconnectLocked() {
        guard let c = conn else { return }
        if callbackID >= 0 { _ = virt.virConnectDomainEventDeregisterAny(c, callbackID) }
        virt.virResetLastError()
        _ = virt.virConnectClose(c)
        conn = nil
        callbackID = -1
    }

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

    // MARK: operations

    func define(_ def: DomainDefinition, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "define \(def.name)"
        let xml: String
        switch def.xml(defaultType: defaultDomainType) {
        case .success(let x): xml = x
        case .failure(let e): return fail(err, ODY_E_INVALID, "\(what): \(e.message)")
        }
        return withConnection(what, err) { c in
            defineLock.with {
                if let existing = virt.virDomainLookupByName(c, def.name) {
                    _ = virt.virDomainFree(existing)
                    return fail(err, ODY_E_EXISTS, "\(what): a domain of that name is already defined")
                }
                virt.virResetLastError()
                guard let dom = virt.virDomainDefineXML(c, xml) else { return virt.fail(err, what) }
                _ = virt.virDomainFree(dom)
                return ODY_OK.rawValue
            }
        }
    }

    func undefine(_ name: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "undefine \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = checkState(dom, .stopped, what, err) { return rc }
            let flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.rawValue
            return virt.virDomainUndefineFlags(dom, flags) == 0 ? ODY_OK.rawValue : virt.fail(err, what)
        }
    }

    /// Whether the domain must be running for an op: drivers differ in how
    /// they report the wrong state (qemu: OPERATION_INVALID, test: INTERNAL_ERROR),
    /// so it is checked first and reported the same way for every driver.
    enum Needs { case running, stopped }

    func checkState(_ dom: OpaquePointer, _ needs: Needs, _ what: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
        switch (virt.virDomainIsActive(dom), needs) {
        case (-1, _): return virt.fail(err, what)
        case (1, .stopped): return fail(err, ODY_E_STATE, "\(what): domain is running")
        case (0, .running): return fail(err, ODY_E_STATE, "\(what): domain is not running")
        default: return nil
        }
    }

    func simple(_ op: String, _ name: String, needs: Needs, _ err: UnsafeMutablePointer<ody_error>?,
                _ call: (OpaquePointer) -> Int32) -> Int32 {
        let what = "\(op) \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = checkState(dom, needs, what, err) { return rc }
            return call(dom) == 0 ? ODY_OK.rawValue : virt.fail(err, what)
        }
    }

    func shutdown(_ name: String, wait: Bool, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "shutdown \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = checkState(dom, .running, what, err) { return rc }
            guard virt.virDomainShutdown(dom) == 0 else { return virt.fail(err, what) }
            guard wait else { return ODY_OK.rawValue }
            let limit = Double(domainShutdownTimeout(dom))
            let t0 = MonotonicClock.now()
            var interval = 0.02
            while true {
                var state: Int32 = 0, reason: Int32 = 0
                if virt.virDomainGetState(dom, &state, &reason, 0) != 0 {
                    // A transient domain disappears once it stops: that is halted too.
                    if virt.virGetLastError()?.pointee.code == Int32(VIR_ERR_NO_DOMAIN.rawValue) { virt.virResetLastError(); return ODY_OK.rawValue }
                    return virt.fail(err, what)
                }
                if UInt32(bitPattern: state) == VIR_DOMAIN_SHUTOFF.rawValue { return ODY_OK.rawValue }
                if MonotonicClock.now() - t0 >= limit {
                    return fail(err, ODY_E_TIMEOUT, "\(what): still \(Self.powerState(state, reason).name) after \(Int(limit)) s (kill it, or raise shutdown_timeout)")
                }
                MonotonicClock.sleep(seconds: interval)
                interval = min(interval * 2, 0.25)
            }
        }
    }

    /// The per-domain bound from our metadata, else the instance's.
    private func domainShutdownTimeout(_ dom: OpaquePointer) -> Int {
        guard let p = virt.virDomainGetMetadata(dom, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), OdysseyMetadata.namespace, 0) else {
            virt.virResetLastError()
            return shutdownTimeout
        }
        defer { free(p) }
        return OdysseyMetadata.integer("shutdown-timeout", in: String(cString: p)).flatMap { $0 > 0 ? $0 : nil } ?? shutdownTimeout
    }

    func info(_ name: String, _ out: inout ody_domain_info, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "get_info \(name)"
        return withDomain(name, what, err) { dom in
            var vi = virDomainInfo()
            guard virt.virDomainGetInfo(dom, &vi) == 0 else { return virt.fail(err, what) }
            var reason: Int32 = 0, state: Int32 = Int32(vi.state)
            if UInt32(vi.state) == VIR_DOMAIN_PAUSED.rawValue, virt.virDomainGetState(dom, &state, &reason, 0) != 0 {
                return virt.fail(err, what)
            }
            var uuid = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
            guard virt.virDomainGetUUIDString(dom, &uuid) == 0 else { return virt.fail(err, what) }
            out.state = Self.powerState(state, reason).rawValue
            FixedCString.write(name, into: &out.name)
            FixedCString.write(uuid.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, into: &out.uuid)
            out.memory_kib = UInt64(vi.memory)
            out.maxmem_kib = UInt64(vi.maxMem)
            out.cputime_ns = vi.cpuTime
            out.vcpus = UInt32(vi.nrVirtCpu)
            out.pid = -1  // libvirt does not expose the emulator's pid through its public API
            return ODY_OK.rawValue
        }
    }

    func names(_ out: inout [String], _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        withConnection("list", err) { c in
            var doms: UnsafeMutablePointer<OpaquePointer?>?
            let n = virt.virConnectListAllDomains(c, &doms, 0)
            guard n >= 0, let doms else { return virt.fail(err, "list") }
            var names: [String] = []
            for i in 0..<Int(n) {
                if let d = doms[i] {
                    if let p = virt.virDomainGetName(d) { names.append(String(cString: p)) }
                    _ = virt.virDomainFree(d)
                }
            }
            free(doms)
            out = names.sorted()
            return ODY_OK.rawValue
        }
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
    func deliverLifecycle(domain: String, event: Int32, detail: Int32) {
        guard let state = LifecycleMap.state(event: event, detail: detail) else { return }
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
