// One opened "xen" vmm instance: a libxl context (thread-safe: operations
// may run concurrently), the definition store, and the death watches whose
// events arrive on this instance's event thread (XenEvents.swift). The lock
// guards our own state only: the store, the watches, the closed flag.
import CXenlight
import Glibc
import PluginABI
import PluginKit

final class XenVmm: @unchecked Sendable {
    let host: HostServices
    /// libxl's calls (loaded by the first open in this process).
    let xl: XenAPI
    let log: XenLog
    let ctx: OpaquePointer
    let shutdownTimeout: Int
    let lock = PluginLock()
    let store: DefinitionStore
    /// Domain-death watches by domid: the domain's name and libxl's handle.
    var watches: [UInt32: (name: String, gen: OpaquePointer)] = [:]
    var closed = false
    var events: XenEventThread!
    private let childHooks: UnsafeMutablePointer<libxl_childproc_hooks>

    private init(host: HostServices, xl: XenAPI, log: XenLog, ctx: OpaquePointer, store: DefinitionStore, shutdownTimeout: Int,
                 childHooks: UnsafeMutablePointer<libxl_childproc_hooks>) {
        self.host = host; self.xl = xl; self.log = log; self.ctx = ctx; self.store = store
        self.shutdownTimeout = shutdownTimeout; self.childHooks = childHooks
    }

    // MARK: open / close

    static func open(host: HostServices, err: UnsafeMutablePointer<ody_error>?) -> Result<XenVmm, ReportedError> {
        guard let stateDir = host.config("state_dir"), !stateDir.isEmpty else {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.xen] state_dir must be set: libxl keeps no domain definitions, this plugin keeps them there")))
        }
        var timeout = 60
        if let t = host.config("shutdown_timeout") {
            guard let v = Int(t), v > 0 else {
                return .failure(ReportedError(fail(err, ODY_E_INVALID, "[vmm.xen] shutdown_timeout \"\(t)\" must be a positive number of seconds")))
            }
            timeout = v
        }
        let xl: XenAPI
        do throws(LibraryError) { xl = try XenAPI.shared.get() } catch {
            return .failure(ReportedError(fail(err, ODY_E_BACKEND, error.message)))
        }
        let log = XenLog(host: host)
        var ctxOut: OpaquePointer?
        log.reset()
        // Only this open uses `log` yet, so quieting it hides nobody else's errors.
        let rc = log.quietly { xl.libxl_ctx_alloc(&ctxOut, LIBXL_VERSION, 0, log.base) }
        guard rc == 0, let ctx = ctxOut else {
            let why = log.takeErrors() ?? ""
            if why.contains("cannot open libxc handle") || !xenDevicePresent() {
                return .failure(ReportedError(fail(err, ODY_E_BACKEND, backend: rc,
                    "Xen is not running: cannot open libxc handle (libxl_ctx_alloc rc \(rc)\(why.isEmpty ? "" : "; " + why))")))
            }
            return .failure(ReportedError(fail(err, ODY_E_BACKEND, backend: rc, "libxl_ctx_alloc failed (rc \(rc))\(why.isEmpty ? "" : ": " + why)")))
        }
        // This process may run children of its own (other backends): libxl
        // must reap only the children it started.
        let hooks = UnsafeMutablePointer<libxl_childproc_hooks>.allocate(capacity: 1)
        hooks.initialize(to: libxl_childproc_hooks())
        hooks.pointee.chldowner = libxl_sigchld_owner_libxl_always_selective_reap
        _ = xl.libxl_childproc_setmode(ctx, hooks, nil)

        let store = DefinitionStore(directory: stateDir)
        do { try store.load() } catch {
            _ = xl.libxl_ctx_free(ctx); hooks.deallocate()
            return .failure(ReportedError(fail(err, ODY_E_IO, backend: error.errno, "[vmm.xen] state_dir: \(error.message)")))
        }
        let vmm = XenVmm(host: host, xl: xl, log: log, ctx: ctx, store: store, shutdownTimeout: timeout, childHooks: hooks)
        switch XenEventThread.make(vmm) {
        case .success(let t):
            if let e = t.launch() {
                _ = xl.libxl_ctx_free(ctx); hooks.deallocate(); t.release()
                return .failure(ReportedError(fail(err, ODY_E_BACKEND, backend: e.errno, "cannot start the libxl event thread: \(e.message)")))
            }
            vmm.events = t
        case .failure(let e):
            _ = xl.libxl_ctx_free(ctx); hooks.deallocate()
            return .failure(ReportedError(fail(err, ODY_E_BACKEND, backend: e.errno, "cannot set up libxl events: \(e.message)")))
        }
        // Watch defined domains that are already running (started by an earlier instance).
        for name in vmm.lock.with({ Array(store.domains.keys) }) {
            if let domid = vmm.domid(of: name) { vmm.watch(domid: domid, name: name) }
        }
        host.log(ODY_LOG_INFO, "libxl context open; \(store.domains.count) definitions in \(store.file)")
        return .success(vmm)
    }

    /// Without /dev/xen/privcmd (or /proc/xen/privcmd) there is no Xen to talk to.
    private static func xenDevicePresent() -> Bool {
        access("/dev/xen/privcmd", F_OK) == 0 || access("/proc/xen/privcmd", F_OK) == 0
    }

    func close() {
        let already = lock.with { () -> Bool in defer { closed = true }; return closed }
        if already { return }
        events.stop()
        let gens = lock.with { () -> [OpaquePointer] in defer { watches.removeAll() }; return watches.values.map(\.gen) }
        for g in gens { xl.libxl_evdisable_domain_death(ctx, g) }
        _ = xl.libxl_ctx_free(ctx)
        childHooks.deallocate()
        events.release()
    }

    // MARK: helpers

    /// The domid of a running domain called `name`, or nil.
    func domid(of name: String) -> UInt32? {
        var id: UInt32 = 0
        log.reset()
        let rc = xl.libxl_name_to_domid(ctx, name, &id)
        _ = log.takeErrors()
        return rc == 0 ? id : nil
    }

    func name(of domid: UInt32) -> String? {
        guard let p = xl.libxl_domid_to_name(ctx, domid) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Arms a DOMAIN_SHUTDOWN/DOMAIN_DEATH watch for `domid`.
    func watch(domid: UInt32, name: String) {
        if lock.with({ watches[domid] != nil || closed }) { return }
        var gen: OpaquePointer?
        log.reset()
        let rc = xl.libxl_evenable_domain_death(ctx, domid, UInt64(domid), &gen)
        guard rc == 0, let gen else {
            host.log(ODY_LOG_WARNING, "no death watch for \(name) (domid \(domid)): libxl error \(rc) \(log.takeErrors() ?? "")")
            return
        }
        lock.with { watches[domid] = (name, gen) }
    }

    func unwatch(domid: UInt32) {
        guard let w = lock.with({ watches.removeValue(forKey: domid) }) else { return }
        xl.libxl_evdisable_domain_death(ctx, w.gen)
    }

    /// Whether Xen can run HVM containers (PVH): HVM support and a paging mode for it.
    func hvmAvailable() -> Bool {
        var p = libxl_physinfo()
        xl.libxl_physinfo_init(&p)
        defer { xl.libxl_physinfo_dispose(&p) }
        log.reset()
        guard xl.libxl_get_physinfo(ctx, &p) == 0 else {
            host.log(ODY_LOG_WARNING, "libxl_get_physinfo failed: \(log.takeErrors() ?? "no reason given"); trying PVH anyway")
            return true  // let libxl's own error speak
        }
        return p.cap_hvm && (p.cap_hap || p.cap_shadow)
    }

    static func uuidString(_ u: libxl_uuid) -> String {
        let b = withUnsafeBytes(of: u.uuid) { Array($0) }
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (i, x) in b.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(0x2d) }
            out.append(hex[Int(x >> 4)]); out.append(hex[Int(x & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: operations

    static let knownParams = ["type", "kernel", "ramdisk", "initrd", "cmdline", "shutdown_timeout"]

    func define(_ def: XenDefinition, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "define \(def.name)"
        guard def.memoryMiB > 0 else { return fail(err, ODY_E_INVALID, "\(what): memory_mib must be greater than 0") }
        guard def.vcpus > 0, def.vcpus <= 512 else { return fail(err, ODY_E_INVALID, "\(what): vcpus must be 1...512") }
        guard def.memoryMiB <= UInt64.max / 1024, def.maxmemMiB <= UInt64.max / 1024 else {
            return fail(err, ODY_E_INVALID, "\(what): memory size overflows")
        }
        if let t = def.params["type"], t != "pv", t != "pvh" {
            return fail(err, ODY_E_INVALID, "\(what): param type \"\(t)\" must be pv or pvh")
        }
        if let t = def.params["shutdown_timeout"], (Int(t) ?? 0) <= 0 {
            return fail(err, ODY_E_INVALID, "\(what): param shutdown_timeout \"\(t)\" must be a positive number of seconds")
        }
        let d = def
        if d.uuid.isEmpty {
            var u = libxl_uuid()
            xl.libxl_uuid_generate(&u)
            d.uuid = Self.uuidString(u)
        } else {
            var u = libxl_uuid()
            guard xl.libxl_uuid_from_string(&u, d.uuid) == 0 else { return fail(err, ODY_E_INVALID, "\(what): uuid \"\(d.uuid)\" is not a UUID") }
            d.uuid = Self.uuidString(u)
        }
        let runningOutside = domid(of: d.name) != nil
        let rc: Int32 = lock.with {
            if store.domains[d.name] != nil { return fail(err, ODY_E_EXISTS, "\(what): a domain of that name is already defined") }
            if runningOutside { return fail(err, ODY_E_EXISTS, "\(what): a running Xen domain already has that name") }
            do throws(StoreError) { try store.update { $0[d.name] = d } } catch {
                return fail(err, ODY_E_IO, backend: error.errno, "\(what): \(error.message)")
            }
            return ODY_OK.rawValue
        }
        if rc == ODY_OK.rawValue { host.emitLifecycle(domain: d.name, state: ODY_STATE_HALTED, message: "defined") }
        return rc
    }

    func undefine(_ name: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "undefine \(name)"
        let running = domid(of: name) != nil
        let rc: Int32 = lock.with {
            guard store.domains[name] != nil else { return fail(err, ODY_E_NOT_FOUND, "\(what): no such domain") }
            if running { return fail(err, ODY_E_STATE, "\(what): domain is running; shut it down or kill it first") }
            do throws(StoreError) { try store.update { $0[name] = nil } } catch {
                return fail(err, ODY_E_IO, backend: error.errno, "\(what): \(error.message)")
            }
            return ODY_OK.rawValue
        }
        if rc == ODY_OK.rawValue { host.emitLifecycle(domain: name, state: ODY_STATE_NA, message: "undefined") }
        return rc
    }

    func start(_ name: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let what = "start \(name)"
        guard let def = lock.with({ store.domains[name] }) else { return fail(err, ODY_E_NOT_FOUND, "\(what): no such domain") }
        if domid(of: name) != nil { return fail(err, ODY_E_STATE, "\(what): domain is already running") }
        guard let kernel = def.params["kernel"], !kernel.isEmpty else {
            return fail(err, ODY_E_INVALID, "\(what): the definition has no kernel param (a PV/PVH guest boots a kernel image)")
        }
        let pvh = def.params["type"] == "pvh"
        // PVH runs in an HVM container: without VMX/SVM (e.g. Xen under QEMU TCG)
        // libxl fails deep in its defaults ("neither hap nor shadow paging
        // available"); say what is missing and what works instead.
        if pvh && !hvmAvailable() {
            return fail(err, ODY_E_UNSUPPORTED, "\(what): type pvh needs hardware virtualization, and this Xen reports none "
                        + "(no HVM with HAP or shadow paging: under QEMU TCG there is none); use type pv")
        }
        let type = pvh ? LIBXL_DOMAIN_TYPE_PVH : LIBXL_DOMAIN_TYPE_PV
        var cfg = libxl_domain_config()
        xl.libxl_domain_config_init(&cfg)
        defer { xl.libxl_domain_config_dispose(&cfg) }
        cfg.c_info.type = type
        cfg.c_info.name = strdup(name)
        guard xl.libxl_uuid_from_string(&cfg.c_info.uuid, def.uuid) == 0 else {
            return fail(err, ODY_E_INVALID, "\(what): stored uuid \"\(def.uuid)\" is not a UUID")
        }
        xl.libxl_domain_build_info_init_type(&cfg.b_info, type)
        cfg.b_info.max_vcpus = Int32(def.vcpus)
        log.reset()
        var rc = xl.libxl_cpu_bitmap_alloc(ctx, &cfg.b_info.avail_vcpus, Int32(def.vcpus))
        guard rc == 0 else { return XenError.fail(err, rc, what, log: log) }
        for i in 0..<Int32(def.vcpus) { xl.libxl_bitmap_set(&cfg.b_info.avail_vcpus, i) }
        cfg.b_info.max_memkb = max(def.memoryMiB, def.maxmemMiB) * 1024
        cfg.b_info.target_memkb = def.memoryMiB * 1024
        cfg.b_info.kernel = strdup(kernel)
        if let r = def.params["ramdisk"] ?? def.params["initrd"], !r.isEmpty { cfg.b_info.ramdisk = strdup(r) }
        if let c = def.params["cmdline"] { cfg.b_info.cmdline = strdup(c) }
        // libxl applies none of these itself; the event thread destroys a
        // domain once it shuts down (Qubes domains never reboot in place).
        cfg.on_poweroff = LIBXL_ACTION_ON_SHUTDOWN_DESTROY
        cfg.on_reboot = LIBXL_ACTION_ON_SHUTDOWN_DESTROY
        cfg.on_crash = LIBXL_ACTION_ON_SHUTDOWN_DESTROY
        let runDir = def.params["run_dir"] ?? ""
        let disks: [XenGuestLayout.Disk]
        switch storedDisks(def) {
        case .success(let d): disks = d
        case .failure(let f): return fail(err, ODY_E_INVALID, "\(what): \(f.message)")
        }
        let t0 = MonotonicClock.now()
        do throws(XenRunFiles.Failure) { try attach(disks, runDir: runDir, &cfg) } catch {
            return fail(err, ODY_E_IO, "\(what): \(error.message)")
        }
        let t1 = MonotonicClock.now()
        var domid: UInt32 = ODY_XEN_INVALID_DOMID
        log.reset()
        rc = xl.libxl_domain_create_new(ctx, &cfg, &domid, nil, nil)
        // Where a start's time goes (the issue's start bar): our files, then libxl (kernel load, hotplug scripts).
        host.log(ODY_LOG_INFO, "\(what): disk files \(Int((t1 - t0) * 1000)) ms, libxl create \(Int((MonotonicClock.now() - t1) * 1000)) ms, \(disks.count) disks")
        guard rc == 0 else {
            let status = XenError.fail(err, rc, what, log: log)
            if domid != ODY_XEN_INVALID_DOMID { _ = xl.libxl_domain_destroy(ctx, domid, nil) }
            XenRunFiles.remove(disks, runDir: runDir)
            return status
        }
        watch(domid: domid, name: name)
        log.reset()
        rc = xl.libxl_domain_unpause(ctx, domid, nil)
        guard rc == 0 else {
            let status = XenError.fail(err, rc, "\(what): unpause after create", log: log)
            _ = xl.libxl_domain_destroy(ctx, domid, nil)
            return status
        }
        host.emitLifecycle(domain: name, state: ODY_STATE_RUNNING, message: "started (domid \(domid))")
        return ODY_OK.rawValue
    }

    /// Runs a libxl call on the running domain `name` (STATE if it is not running).
    func onRunning(_ op: String, _ name: String, _ err: UnsafeMutablePointer<ody_error>?,
                   _ call: (UInt32) -> Int32) -> Result<UInt32, ReportedError> {
        let what = "\(op) \(name)"
        guard let domid = domid(of: name) else {
            let known = lock.with { store.domains[name] != nil }
            return .failure(ReportedError(known ? fail(err, ODY_E_STATE, "\(what): domain is not running")
                                          : fail(err, ODY_E_NOT_FOUND, "\(what): no such domain")))
        }
        log.reset()
        let rc = call(domid)
        guard rc == 0 else { return .failure(ReportedError(XenError.fail(err, rc, what, log: log))) }
        return .success(domid)
    }

    func shutdown(_ name: String, wait: Bool, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let domid: UInt32
        switch onRunning("shutdown", name, err, { xl.libxl_domain_shutdown(ctx, $0, nil) }) {
        case .success(let d): domid = d
        case .failure(let f): return f.status
        }
        guard wait else { return ODY_OK.rawValue }
        let param = lock.with { store.domains[name]?.params["shutdown_timeout"] }.flatMap { Int($0) }
        let limit = Double(param ?? shutdownTimeout)
        let t0 = MonotonicClock.now()
        var interval = 0.02
        while true {
            var info = libxl_dominfo()
            xl.libxl_dominfo_init(&info)
            log.reset()
            let rc = xl.libxl_domain_info(ctx, &info, domid)
            let shutDown = info.shutdown && !info.dying
            xl.libxl_dominfo_dispose(&info)
            if rc == ERROR_DOMAIN_NOTFOUND.rawValue { _ = log.takeErrors(); return ODY_OK.rawValue }
            if rc != 0 { return XenError.fail(err, rc, "shutdown \(name): waiting", log: log) }
            // The event thread destroys a shut-down domain it watches; only an
            // unwatched one (its watch could not be armed) is destroyed here:
            // two destroys race, and the loser logs libxl errors.
            if shutDown && lock.with({ watches[domid] == nil }) { _ = xl.libxl_domain_destroy(ctx, domid, nil) }
            if MonotonicClock.now() - t0 >= limit {
                return fail(err, ODY_E_TIMEOUT, "shutdown \(name): still running after \(Int(limit)) s (kill it, or raise shutdown_timeout)")
            }
            MonotonicClock.sleep(seconds: interval)
            interval = min(interval * 2, 0.25)
        }
    }

    func kill(_ name: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        switch onRunning("kill", name, err, { xl.libxl_domain_destroy(ctx, $0, nil) }) {
        case .success: return ODY_OK.rawValue
        case .failure(let f): return f.status
        }
    }

    func pause(_ name: String, paused: Bool, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let r = onRunning(paused ? "pause" : "unpause", name, err) {
            paused ? xl.libxl_domain_pause(ctx, $0, nil) : xl.libxl_domain_unpause(ctx, $0, nil)
        }
        switch r {
        case .success:
            host.emitLifecycle(domain: name, state: paused ? ODY_STATE_PAUSED : ODY_STATE_RUNNING,
                               message: paused ? "paused" : "unpaused")
            return ODY_OK.rawValue
        case .failure(let f): return f.status
        }
    }

    func info(_ name: String, _ out: inout ody_domain_info, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        let def = lock.with { store.domains[name] }
        FixedCString.write(name, into: &out.name)
        out.pid = -1
        if let domid = domid(of: name) {
            var info = libxl_dominfo()
            xl.libxl_dominfo_init(&info)
            defer { xl.libxl_dominfo_dispose(&info) }
            log.reset()
            let rc = xl.libxl_domain_info(ctx, &info, domid)
            if rc == 0 {
                out.state = Self.powerState(info).rawValue
                FixedCString.write(Self.uuidString(info.uuid), into: &out.uuid)
                out.memory_kib = info.current_memkb
                // Xen's own max is the boot target plus libxl's 1 MiB slack; the
                // balloon ceiling the domain was given (static-max) is the definition's.
                out.maxmem_kib = def.map { max($0.memoryMiB, $0.maxmemMiB) * 1024 } ?? info.max_memkb
                out.cputime_ns = info.cpu_time
                out.vcpus = info.vcpu_online
                return ODY_OK.rawValue
            }
            // Gone between the two calls: fall through to the definition.
            if rc != ERROR_DOMAIN_NOTFOUND.rawValue { return XenError.fail(err, rc, "get_info \(name)", log: log) }
        }
        guard let def else { return fail(err, ODY_E_NOT_FOUND, "get_info \(name): no such domain") }
        out.state = ODY_STATE_HALTED.rawValue
        FixedCString.write(def.uuid, into: &out.uuid)
        out.memory_kib = def.memoryMiB * 1024
        out.maxmem_kib = max(def.memoryMiB, def.maxmemMiB) * 1024
        out.cputime_ns = 0
        out.vcpus = def.vcpus
        return ODY_OK.rawValue
    }

    static func powerState(_ i: libxl_dominfo) -> ody_power_state {
        if i.dying { return ODY_STATE_DYING }
        if i.shutdown {
            let r = i.shutdown_reason
            return r == LIBXL_SHUTDOWN_REASON_CRASH || r == LIBXL_SHUTDOWN_REASON_WATCHDOG ? ODY_STATE_CRASHED : ODY_STATE_HALTING
        }
        if i.paused { return ODY_STATE_PAUSED }
        return ODY_STATE_RUNNING  // running, blocked, or runnable and waiting for a CPU
    }

    /// Defined domains plus running ones (except Domain-0, the host itself).
    func names(_ out: inout [String], _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        var names = Set(lock.with { store.domains.keys })
        var n: Int32 = 0
        log.reset()
        guard let infos = xl.libxl_list_domain(ctx, &n) else {
            return fail(err, ODY_E_BACKEND, "list: libxl_list_domain failed\(log.takeErrors().map { ": \($0)" } ?? "")")
        }
        for i in 0..<Int(n) where infos[i].domid != 0 {
            if let nm = name(of: infos[i].domid) { names.insert(nm) }
        }
        xl.libxl_dominfo_list_free(infos, n)
        out = names.sorted()
        return ODY_OK.rawValue
    }
}
