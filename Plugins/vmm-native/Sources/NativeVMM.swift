// One open instance of the `native` vmm factory: the defined domains, their
// power states, and the reaper thread that notices when a domain's init exits.
//
// Locking: `lock` guards `slots`. Slow work (spawning the jailer, cleanup)
// runs unlocked while the slot is marked `busy`; host callbacks (events) are
// never called with the lock held.
import Glibc
import PluginABI
import CVmmNative
import PluginKit

final class Slot {
    var def: Definition
    var layout: Layout
    var state: ody_power_state = ODY_STATE_HALTED
    var pid: Int32 = -1
    var pidfd: Int32 = -1
    /// The reaper polls the pidfd only once the Running event is out, so a
    /// domain's Halted event never precedes its Running event.
    var watched = false
    var busy = false
    var stopRequested = false
    var killDeadline: UInt64? = nil
    /// Bumped each time the domain halts: shutdown/kill wait for it.
    var generation = 0
    var cgroups: Cgroups

    init(def: Definition, layout: Layout, cgroupParent: String) {
        self.def = def
        self.layout = layout
        self.cgroups = Cgroups(parent: cgroupParent, name: def.name)
    }
}

final class NativeVMM: @unchecked Sendable {
    let host: HostServices
    let config: Config
    let store: StateStore
    let lock = Lock()
    private var slots: [String: Slot] = [:]
    private var wake: [Int32] = [-1, -1]
    private var stopping = false
    private var reaper = pthread_t()
    private var reaperStarted = false
    let privileged = geteuid() == 0

    init(host: HostServices, name: String) throws {
        self.host = host
        config = try Config.load(host)
        store = try StateStore(dir: config.stateDir)
        if !privileged {
            host.log(ODY_LOG_WARNING, "native: running as uid \(geteuid()), not root: domains cannot start (cgroup limits for memory/pids/freezer, the per-domain uid range and idmapped template roots all need root); define/list still work")
        }
        for d in store.loadDefinitions() {
            do {
                slots[d.name] = Slot(def: d, layout: try Layout(d, config: config), cgroupParent: config.cgroupParent)
            } catch let e as NativeError {
                host.log(ODY_LOG_ERROR, "native: ignoring stored definition of \(d.name): \(e.message)")
            }
        }
        try Sys.check("pipe2") { vmm_pipe2(&wake, O_CLOEXEC | O_NONBLOCK) }
        readopt()
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&reaper, nil, { arg in
            let vmm = Unmanaged<NativeVMM>.fromOpaque(arg!).takeRetainedValue()
            vmm.reaperLoop()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<NativeVMM>.fromOpaque(box).release()
            throw NativeError.sys("pthread_create reaper", rc)
        }
        reaperStarted = true
        host.log(ODY_LOG_DEBUG, "native: \(name) open: state_dir=\(config.stateDir) jailer=\(config.jailer) seccomp=\(config.seccomp.path) (\(config.seccomp.rules.count) rules)")
    }

    /// Stops the reaper; running domains keep running (the next open re-adopts them).
    func close() {
        lock.locked { stopping = true }
        poke()
        if reaperStarted { pthread_join(reaper, nil) }
        lock.locked {
            for s in slots.values where s.pidfd >= 0 { Glibc.close(s.pidfd); s.pidfd = -1 }
        }
        Glibc.close(wake[0]); Glibc.close(wake[1])
    }

    private func poke() { var b: UInt8 = 1; _ = write(wake[1], &b, 1) }

    // MARK: re-adoption

    /// Running domains from run records: verified by pid + start time, else
    /// cleaned up (processes in its cgroups, run_dir, cgroups, record).
    private func readopt() {
        for name in store.runRecordNames() {
            guard let rec = store.runRecord(name), let slot = slots[name] else {
                // A record without a definition, or an unreadable record:
                // clean what we can find.
                let runDir = store.runRecord(name)?.runDir ?? slots[name]?.layout.runDir
                try? Cgroups(parent: config.cgroupParent, name: name).destroy()
                if let runDir { try? Sys.removeTree(runDir) }
                store.removeRun(name)
                continue
            }
            if rec.pid > 0, let st = Sys.processStartTime(rec.pid), st == rec.startTime,
               let fd = try? Sys.pidfdOpen(rec.pid) {
                slot.pid = rec.pid
                slot.pidfd = fd
                slot.watched = true
                slot.state = slot.cgroups.freezerState() == "FROZEN" ? ODY_STATE_PAUSED : ODY_STATE_RUNNING
                host.log(ODY_LOG_INFO, "native: re-adopted \(name) (pid \(rec.pid), \(slot.state == ODY_STATE_PAUSED ? "paused" : "running"))")
            } else {
                host.log(ODY_LOG_INFO, "native: \(name) died while the host was away (pid \(rec.pid)); cleaning up")
                cleanup(slot, runDir: rec.runDir)
            }
        }
        // Cgroups with no record (a crash between mkdir and the record write
        // cannot happen by construction, but a hand-made mess can).
        for slot in slots.values where slot.pid < 0 && !slot.cgroups.existing().isEmpty {
            cleanup(slot, runDir: slot.layout.runDir)
        }
    }

    /// Leaves nothing behind: processes, mounts (all of a domain's mounts live
    /// in its own mount namespace, so the host sees none), run_dir, cgroups.
    private func cleanup(_ slot: Slot, runDir: String) {
        let name = slot.def.name
        do { try slot.cgroups.destroy() } catch let e as NativeError { host.log(ODY_LOG_ERROR, e.message) } catch {}
        do { try Sys.removeTree(runDir) } catch let e as NativeError { host.log(ODY_LOG_ERROR, "native: cleanup of \(name): \(e.message)") } catch {}
        store.removeRun(name)
    }

    // MARK: the reaper

    private func reaperLoop() {
        while true {
            var fds = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            var names: [String] = []
            var timeout: Int32 = -1
            let quit: Bool = lock.locked {
                let now = Sys.monotonicNanos()
                for (name, s) in slots where s.pidfd >= 0 && s.watched {
                    fds.append(pollfd(fd: s.pidfd, events: Int16(POLLIN), revents: 0))
                    names.append(name)
                    if let d = s.killDeadline {
                        let ms = Int32(clamping: d > now ? (d - now) / 1_000_000 + 1 : 0)
                        timeout = timeout < 0 ? ms : min(timeout, ms)
                    }
                }
                return stopping
            }
            if quit { return }
            // Console logs are checked about once a second (ConsoleLog).
            if !names.isEmpty && config.consoleLogMax > 0 { timeout = timeout < 0 ? 1000 : min(timeout, 1000) }
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { Sys.sleepMillis(10); continue }
            if fds[0].revents != 0 {
                var buf = [UInt8](repeating: 0, count: 64)
                while read(wake[0], &buf, buf.count) > 0 {}
            }
            for (i, name) in names.enumerated() where fds[i + 1].revents != 0 {
                domainExited(name)
            }
            rotateConsoleLogs(names)
            // Shutdowns that outlived their timeout: SIGKILL (thawed first).
            let now = Sys.monotonicNanos()
            let killed: [String] = lock.locked {
                var killed: [String] = []
                for s in slots.values where s.pidfd >= 0 {
                    if let d = s.killDeadline, d <= now {
                        s.killDeadline = nil
                        Sys.signal(s.pidfd, SIGKILL)
                        try? Sys.writeKnob("\(s.cgroups.dir("freezer"))/freezer.state", "THAWED")
                        killed.append(s.def.name)
                    }
                }
                return killed
            }
            for name in killed {
                host.log(ODY_LOG_WARNING, "native: \(name) did not halt within \(config.shutdownTimeoutMs) ms; killed it")
            }
        }
    }

    /// Caps the console logs of running domains, at most once a second.
    private var lastConsoleCheck: UInt64 = 0
    private func rotateConsoleLogs(_ names: [String]) {
        let now = Sys.monotonicNanos()
        guard config.consoleLogMax > 0, now - lastConsoleCheck >= 900_000_000 else { return }
        lastConsoleCheck = now
        for name in names {
            do { try ConsoleLog.rotateIfNeeded(store.consolePath(name), max: config.consoleLogMax) } catch let e as NativeError {
                host.log(ODY_LOG_WARNING, "native: console log of \(name): \(e.message)")
            } catch {}
        }
    }

    /// init exited: reap it, clean up, and say Halted or Crashed.
    private func domainExited(_ name: String) {
        let taken: (Slot, Sys.Exit?, String)? = lock.locked {
            guard let s = slots[name], s.pidfd >= 0 else { return nil }
            let status = Sys.reap(s.pidfd)
            Glibc.close(s.pidfd)
            s.pidfd = -1
            s.state = ODY_STATE_HALTING
            s.busy = true
            return (s, status, s.layout.runDir)
        }
        guard let (slot, status, runDir) = taken else { return }
        let mem = slot.cgroups.dir("memory")
        let oomKills = (Sys.readText("\(mem)/memory.oom_control") ?? "").split(separator: "\n")
            .first { $0.hasPrefix("oom_kill ") }.flatMap { Int($0.dropFirst(9)) } ?? 0
        let oom = oomKills > 0
        cleanup(slot, runDir: store.runRecord(name)?.runDir ?? runDir)
        let (final, message, detail): (ody_power_state, String, Int32) = lock.locked {
            var st = ODY_STATE_HALTED
            var msg: String
            var detail: Int32 = 0
            switch status {
            case nil:
                msg = "init exited (exit status unknown: the domain was re-adopted)"
            case .exited(let code)?:
                detail = code
                msg = "init exited with status \(code)"
                if code != 0 && !slot.stopRequested { st = ODY_STATE_CRASHED }
            case .signaled(let sig)?:
                detail = sig
                msg = "init killed by signal \(sig)"
                if !slot.stopRequested { st = ODY_STATE_CRASHED }
            }
            if oom { msg += " (the memory limit OOM-killed \(oomKills) process\(oomKills == 1 ? "" : "es"))" }
            slot.state = st
            slot.pid = -1
            slot.busy = false
            slot.watched = false
            slot.stopRequested = false
            slot.killDeadline = nil
            slot.generation += 1
            lock.broadcast()
            return (st, msg, detail)
        }
        host.log(ODY_LOG_INFO, "native: \(name) \(final == ODY_STATE_CRASHED ? "crashed" : "halted"): \(message)")
        host.emitLifecycle(domain: name, state: final, detail: detail, message: message)
    }

    // MARK: operations

    private func slot(_ name: String) throws -> Slot {
        guard let s = slots[name] else { throw NativeError(ODY_E_NOT_FOUND, "native: no domain named '\(name)'") }
        return s
    }

    func define(_ cfg: DomainConfig) throws {
        let name = cfg.name
        guard Layout.validName(name) else {
            throw NativeError(ODY_E_INVALID, "native: bad domain name '\(name)': a letter, then letters, digits, '_', '-' or '.', at most 31")
        }
        // The host's description (1.2) when there is one; raw params from a
        // dom0 admin.odyssey.vmm.Define (or a 1.1 host) otherwise.
        let params = try cfg.description.map { try DescriptionParams.params($0, name: name) } ?? cfg.params
        try lock.locked {
            if slots[name] != nil { throw NativeError(ODY_E_EXISTS, "native: domain \(name) is already defined") }
            let used = Set(slots.values.map(\.def.index))
            var index = 0
            while used.contains(index) { index += 1 }
            let def = Definition(name: name, uuid: cfg.uuid, memoryMiB: cfg.memoryMiB,
                                 maxmemMiB: cfg.maxmemMiB, vcpus: cfg.vcpus, index: index, params: params)
            let layout = try Layout(def, config: config)
            for other in slots.values where other.layout.uidRange.overlaps(layout.uidRange) {
                throw NativeError(ODY_E_INVALID, "native: define \(name): uid range \(layout.uidBase)+\(layout.uidCount) overlaps \(other.def.name)'s \(other.layout.uidBase)+\(other.layout.uidCount)")
            }
            try store.save(def)
            slots[name] = Slot(def: def, layout: layout, cgroupParent: config.cgroupParent)
        }
    }

    func undefine(_ name: String) throws {
        try lock.locked {
            let s = try slot(name)
            guard s.state == ODY_STATE_HALTED || s.state == ODY_STATE_CRASHED, !s.busy else {
                throw NativeError(ODY_E_STATE, "native: \(name) is not halted; shut it down first")
            }
            try store.removeDefinition(name)
            slots[name] = nil
            try store.removeConsoleLogs(name)
        }
    }

    func start(_ name: String) throws {
        let s: Slot = try lock.locked {
            let s = try slot(name)
            guard !s.busy, s.state == ODY_STATE_HALTED || s.state == ODY_STATE_CRASHED else {
                throw NativeError(ODY_E_STATE, "native: \(name) is already running")
            }
            guard privileged else {
                throw NativeError(ODY_E_PERMISSION, "native: cannot start \(name): the host runs as uid \(geteuid()), not root; native domains need root for cgroup limits (memory, pids, freezer), the domain's own uid range and idmapped template roots")
            }
            s.busy = true
            s.state = ODY_STATE_TRANSIENT
            return s
        }
        var l = s.layout
        do {
            // A host-provided init runs from an execute-only copy, out of
            // the domain root's reach (ExecOnlyInit says why).
            l.bindRO = try ExecOnlyInit.shield(bindRO: l.bindRO, initPath: l.initPath, stateDir: config.stateDir)
            // Leftovers of an earlier crash, then a record before anything is
            // created, so a host killed mid-start cleans up at its next open.
            if Sys.exists(l.runDir) { try Sys.removeTree(l.runDir) }
            if !s.cgroups.existing().isEmpty { try s.cgroups.destroy() }
            try store.saveRun(name, RunRecord(pid: 0, startTime: 0, runDir: l.runDir))
            let cg = try s.cgroups.create(limitMiB: s.def.limitMiB, pidsMax: l.pidsMax,
                                          vcpus: Cgroups.cpuQuota(vcpus: s.def.vcpus, reserve: config.hostCPUReserve))
            if let slash = l.runDir.lastIndex(of: "/"), slash != l.runDir.startIndex {
                try Sys.mkdirs(String(l.runDir[..<slash]), mode: 0o700)
            }
            if !l.privateDir.isEmpty { try shiftPrivateToGuestIds(name, l) }
            let pid = try JailerLaunch.run(jailer: config.jailer,
                                           spec: JailerLaunch.spec(l, cgroups: cg, seccomp: config.seccomp),
                                           console: store.consolePath(name), name: name)
            let fd: Int32
            do { fd = try Sys.pidfdOpen(pid) } catch {
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                throw error
            }
            let startTime = Sys.processStartTime(pid) ?? 0
            try store.saveRun(name, RunRecord(pid: pid, startTime: startTime, runDir: l.runDir))
            lock.locked {
                s.pid = pid
                s.pidfd = fd
                s.state = ODY_STATE_RUNNING
                s.busy = false
                s.stopRequested = false
            }
        } catch {
            cleanup(s, runDir: l.runDir)
            lock.locked {
                s.state = ODY_STATE_HALTED
                s.busy = false
            }
            throw error
        }
        host.emitLifecycle(domain: name, state: ODY_STATE_RUNNING, message: "init pid \(s.pid)")
        lock.locked { s.watched = true }
        poke()
    }

    /// A private volume written under the old convention (uid_base+k on
    /// disk) gets the guest's own ids once (PrivateOwnership says why here).
    private func shiftPrivateToGuestIds(_ name: String, _ l: Layout) throws {
        let t0 = Sys.monotonicNanos()
        let r = try PrivateOwnership.shiftIfNeeded(l.privateDir, count: l.uidCount)
        guard let base = r.base else { return }
        let ms = (Sys.monotonicNanos() - t0) / 1_000_000
        host.log(ODY_LOG_INFO, "native: \(name): private volume written with uid base \(base)\(base == l.uidBase ? "" : " (this domain's is \(l.uidBase))"): \(r.shifted) entries shifted to the guest's own ids in \(ms) ms")
        if r.foreign > 0 {
            host.log(ODY_LOG_WARNING, "native: \(name): \(r.foreign) private-volume entries have ids outside \(base)..<\(UInt64(base) + UInt64(l.uidCount)), left as they are (the domain sees them as nobody); first: \(r.firstForeign)")
        }
    }

    /// SIGTERM to init; SIGKILL after shutdown_timeout_ms. With `wait`,
    /// returns once the domain has halted and been cleaned up.
    func shutdown(_ name: String, wait: Bool) throws {
        try lock.locked {
            let s = try slot(name)
            switch s.state {
            case ODY_STATE_RUNNING where s.pidfd >= 0: break
            case ODY_STATE_PAUSED: throw NativeError(ODY_E_STATE, "native: \(name) is paused; unpause or kill it")
            case ODY_STATE_HALTING: break
            default: throw NativeError(ODY_E_STATE, "native: \(name) is not running")
            }
            if s.pidfd >= 0 && !s.stopRequested {
                s.stopRequested = true
                s.killDeadline = Sys.monotonicNanos() + config.shutdownTimeoutMs * 1_000_000
                Sys.signal(s.pidfd, SIGTERM)
                poke() // the reaper now has a kill deadline to keep
            }
            if wait { try waitHalted(s, name, extraMs: config.shutdownTimeoutMs) }
        }
    }

    /// SIGKILL (the kernel then kills the whole pid namespace); returns once halted.
    func kill(_ name: String) throws {
        try lock.locked {
            let s = try slot(name)
            guard s.pidfd >= 0 || s.state == ODY_STATE_HALTING else {
                throw NativeError(ODY_E_STATE, "native: \(name) is not running")
            }
            if s.pidfd >= 0 {
                s.stopRequested = true
                Sys.signal(s.pidfd, SIGKILL)
                // Frozen tasks cannot die until thawed.
                if s.state == ODY_STATE_PAUSED { try? Sys.writeKnob("\(s.cgroups.dir("freezer"))/freezer.state", "THAWED") }
            }
            try waitHalted(s, name, extraMs: 0)
        }
    }

    /// Lock held. Waits for the reaper to finish this run of the domain.
    private func waitHalted(_ s: Slot, _ name: String, extraMs: UInt64) throws {
        let g = s.generation
        let deadline = Sys.monotonicNanos() + (extraMs + 5_000) * 1_000_000
        while s.generation == g && s.state != ODY_STATE_HALTED && s.state != ODY_STATE_CRASHED {
            if !lock.wait(deadlineNanos: deadline) && Sys.monotonicNanos() >= deadline {
                throw NativeError(ODY_E_TIMEOUT, "native: \(name) did not halt in time")
            }
        }
    }

    func setPaused(_ name: String, _ paused: Bool) throws {
        try lock.locked {
            let s = try slot(name)
            let from = paused ? ODY_STATE_RUNNING : ODY_STATE_PAUSED
            guard s.state == from, s.pidfd >= 0, !s.busy else {
                throw NativeError(ODY_E_STATE, "native: \(name) is not \(paused ? "running" : "paused")")
            }
            try s.cgroups.setFrozen(paused)
            s.state = paused ? ODY_STATE_PAUSED : ODY_STATE_RUNNING
        }
        host.emitLifecycle(domain: name, state: paused ? ODY_STATE_PAUSED : ODY_STATE_RUNNING,
                           message: paused ? "frozen" : "thawed")
    }

    /// Fills a full-size ody_domain_info (PluginKit copies what the caller's struct_size holds).
    func info(_ name: String, into out: inout ody_domain_info) throws {
        try lock.locked {
            let s = try slot(name)
            var i = ody_domain_info()
            i.struct_size = UInt32(MemoryLayout<ody_domain_info>.size)
            i.state = s.state.rawValue
            FixedCString.write(s.def.name, into: &i.name)
            FixedCString.write(s.def.uuid, into: &i.uuid)
            i.maxmem_kib = s.def.limitMiB * 1024
            i.vcpus = s.def.vcpus
            i.pid = s.pid > 0 ? s.pid : -1
            if s.pid > 0 {
                i.memory_kib = s.cgroups.memoryUsageKiB()
                i.cputime_ns = s.cgroups.cpuNanos()
            }
            out = i
        }
    }

    func names() -> [String] { lock.locked { slots.keys.sorted() } }
}
