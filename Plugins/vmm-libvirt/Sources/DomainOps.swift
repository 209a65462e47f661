// What each vmm operation does on libvirt: define from the description's
// XML, start with its per-start files, the ways down (ACPI shutdown bounded
// by a destroy, kill) each removing those files, and the reads (info, list).
import CLibvirt
import Glibc
import LibvirtDomainXML
import PluginABI
import PluginKit

extension LibvirtVmm {
    func define(_ c: DomainConfig, _ err: ErrorPointer) -> Int32 {
        let what = "define \(c.name)"
        var timeout: Int?
        if let t = c.params["shutdown_timeout"] {
            guard let v = Int(t), v > 0 else { return fail(err, ODY_E_INVALID, "\(what): param shutdown_timeout \"\(t)\" must be a positive number of seconds") }
            timeout = v
        }
        var builder = DomainXML(name: c.name, uuid: c.uuid, memoryMiB: c.memoryMiB, maxmemMiB: c.maxmemMiB, vcpus: c.vcpus,
                                description: c.description ?? DomainDescription(), domainType: defaultDomainType,
                                shutdownTimeout: timeout, owner: owner)
        if case .failure(let e) = builder.build() { return fail(err, ODY_E_INVALID, "\(what): \(e.message)") }
        return withConnection(what, err) { conn in
            defineLock.with {
                if let existing = virt.virDomainLookupByName(conn, c.name) {
                    _ = virt.virDomainFree(existing)
                    return fail(err, ODY_E_EXISTS, "\(what): a domain of that name is already defined")
                }
                virt.virResetLastError()
                // Under the define lock: two defines never pick the same uid.
                if let start = qemuUidStart, let gid = qemuGid {
                    guard let uid = freeQemuUid(conn, start: start) else {
                        return fail(err, ODY_E_AGAIN, "\(what): every QEMU uid of [vmm.libvirt] qemu_uid_start \(start) (+\(QemuUsers.count)) is taken")
                    }
                    builder.qemuUser = (uid, gid)
                }
                let built: (xml: String, plan: StartPlan)
                switch builder.build() {
                case .success(let b): built = b
                case .failure(let e): return fail(err, ODY_E_INVALID, "\(what): \(e.message)")
                }
                guard let dom = virt.virDomainDefineXML(conn, built.xml) else { return virt.fail(err, what) }
                _ = virt.virDomainFree(dom)
                rememberPlan(c.name, built.plan)
                reported.record(c.name, ODY_STATE_HALTED)  // so the watch reports its first start
                return ODY_OK.rawValue
            }
        }
    }

    /// The lowest uid of the range no domain on this libvirtd labels its QEMU with.
    private func freeQemuUid(_ conn: OpaquePointer, start: UInt32) -> UInt32? {
        var taken = Set<UInt32>()
        _ = virt.forEachDomain(conn) { d, _ in
            guard let x = virt.virDomainGetXMLDesc(d, 0) else { virt.virResetLastError(); return }
            defer { free(x) }
            taken.formUnion(QemuUsers.labelled(in: String(cString: x), start: start))
        }
        return QemuUsers.pick(start: start, taken: taken)
    }

    func undefine(_ name: String, _ err: ErrorPointer) -> Int32 {
        let what = "undefine \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = refuseOthers(dom, name, what, err) { return rc }
            if let rc = checkState(dom, .stopped, what, err) { return rc }
            removeRunFiles(name, plan(dom, name))
            let flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.rawValue
            guard virt.virDomainUndefineFlags(dom, flags) == 0 else { return virt.fail(err, what) }
            rememberPlan(name, nil)
            reported.forget(name)
            return ODY_OK.rawValue
        }
    }

    /// Makes the per-start files, then has libvirt create the domain; on a
    /// failure removes them again and quotes the console's last lines.
    func start(_ name: String, _ err: ErrorPointer) -> Int32 {
        let what = "start \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = refuseOthers(dom, name, what, err) { return rc }
            if let rc = checkState(dom, .stopped, what, err) { return rc }
            let plan = plan(dom, name) ?? StartPlan()
            do throws(RunFiles.Failure) { try RunFiles.prepare(plan) } catch {
                host.log(ODY_LOG_ERROR, "\(what): \(error.message)")  // whole; the error's message is bounded
                return fail(err, ODY_E_IO, "\(what): \(error.message)")
            }
            guard virt.virDomainCreate(dom) == 0 else {
                let rc = virt.fail(err, what)
                RunFiles.remove(plan)
                if let tail = ConsoleLog.tail(plan) { host.log(ODY_LOG_WARNING, "\(what) failed; console: \(tail)") }
                return rc
            }
            return ODY_OK.rawValue
        }
    }

    func kill(_ name: String, _ err: ErrorPointer) -> Int32 {
        let what = "kill \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = refuseOthers(dom, name, what, err) { return rc }
            if let rc = checkState(dom, .running, what, err) { return rc }
            guard virt.virDomainDestroy(dom) == 0 else { return virt.fail(err, what) }
            removeRunFiles(name, plan(dom, name))
            return ODY_OK.rawValue
        }
    }

    /// ACPI power button. With `wait`: pressed again every 2 s (a guest still
    /// booting misses the first press) until the domain is off; after the
    /// bound the domain is destroyed, so a wait always ends with it off.
    func shutdown(_ name: String, wait: Bool, _ err: ErrorPointer) -> Int32 {
        let what = "shutdown \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = checkState(dom, .running, what, err) { return rc }
            guard virt.virDomainShutdown(dom) == 0 else { return virt.fail(err, what) }
            guard wait else { return ODY_OK.rawValue }
            let limit = Double(plan(dom, name)?.shutdownTimeout ?? shutdownTimeout)
            let t0 = MonotonicClock.now()
            var lastPress = t0, interval = 0.02
            while true {
                var state: Int32 = 0, reason: Int32 = 0
                if virt.virDomainGetState(dom, &state, &reason, 0) != 0 { return virt.fail(err, what) }
                if UInt32(bitPattern: state) == VIR_DOMAIN_SHUTOFF.rawValue { break }
                let now = MonotonicClock.now()
                if now - t0 >= limit {
                    host.log(ODY_LOG_WARNING, "\(what): still \(Self.powerState(state, reason).name) after \(Int(limit)) s; destroying it")
                    guard virt.virDomainDestroy(dom) == 0 || virt.virDomainIsActive(dom) == 0 else { return virt.fail(err, what) }
                    virt.virResetLastError()
                    break
                }
                if now - lastPress >= 2 {
                    _ = virt.virDomainShutdown(dom)  // fails harmlessly if it went off meanwhile
                    virt.virResetLastError()
                    lastPress = now
                }
                MonotonicClock.sleep(seconds: interval)
                interval = min(interval * 2, 0.25)
            }
            removeRunFiles(name, plan(dom, name))
            return ODY_OK.rawValue
        }
    }

    /// Whether the domain must be running for an op: drivers differ in how
    /// they report the wrong state (qemu: OPERATION_INVALID, test: INTERNAL_ERROR),
    /// so it is checked first and reported the same way for every driver.
    enum Needs { case running, stopped }

    func checkState(_ dom: OpaquePointer, _ needs: Needs, _ what: String, _ err: ErrorPointer) -> Int32? {
        switch (virt.virDomainIsActive(dom), needs) {
        case (-1, _): return virt.fail(err, what)
        case (1, .stopped): return fail(err, ODY_E_STATE, "\(what): domain is running")
        case (0, .running): return fail(err, ODY_E_STATE, "\(what): domain is not running")
        default: return nil
        }
    }

    func simple(_ op: String, _ name: String, needs: Needs, _ err: ErrorPointer, _ call: (OpaquePointer) -> Int32) -> Int32 {
        let what = "\(op) \(name)"
        return withDomain(name, what, err) { dom in
            if let rc = checkState(dom, needs, what, err) { return rc }
            return call(dom) == 0 ? ODY_OK.rawValue : virt.fail(err, what)
        }
    }

    func info(_ name: String, _ out: inout ody_domain_info, _ err: ErrorPointer) -> Int32 {
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
            out.pid = virt.virDomainIsActive(dom) == 1 ? emulatorPid(name) : -1
            return ODY_OK.rawValue
        }
    }

    /// QEMU's pid, from the pid file libvirtd's QEMU driver keeps for a
    /// running domain (its public API has no call for it); -1 if unknown.
    func emulatorPid(_ name: String) -> Int32 {
        guard uri.hasPrefix("qemu:///system"), !name.contains("/"), !name.hasPrefix(".") else { return -1 }
        let fd = Glibc.open("/run/libvirt/qemu/\(name).pid", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return -1 }
        defer { Glibc.close(fd) }
        var buf = [UInt8](repeating: 0, count: 16)
        let n = read(fd, &buf, buf.count)
        guard n > 0, let pid = Int32(String(decoding: buf[0..<n], as: UTF8.self).trimmingSpaces), pid > 1 else { return -1 }
        return pid
    }

    /// A domain this instance did not define (another odysseyd's, or no
    /// Odyssey domain at all) is never started, killed or undefined here.
    func refuseOthers(_ dom: OpaquePointer, _ name: String, _ what: String, _ err: ErrorPointer) -> Int32? {
        let theirs = plan(dom, name)?.owner
        guard theirs != owner else { return nil }
        return fail(err, ODY_E_PERMISSION, "\(what): the libvirt domain \(name) is not this odysseyd's "
                    + (theirs.map { "(owner \"\($0)\", ours \"\(owner)\")" } ?? "(no Odyssey metadata)"))
    }

    func names(_ out: inout [String], _ err: ErrorPointer) -> Int32 {
        withConnection("list", err) { c in
            var names: [String] = []
            // Only this odysseyd's domains: other VMs on the same libvirtd
            // are never listed, so never adopted or killed.
            let listed = virt.forEachDomain(c) { d, name in
                if plan(d, name)?.owner == owner { names.append(name) }
            }
            guard listed else { return virt.fail(err, "list") }
            out = names.sorted()
            return ODY_OK.rawValue
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        let u = Array(String(self).utf8)
        let space: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
        guard let a = u.firstIndex(where: { !space($0) }), let b = u.lastIndex(where: { !space($0) }) else { return "" }
        return String(decoding: u[a...b], as: UTF8.self)
    }
}

/// The last lines of a domain's console log (run_dir/console.log), for errors.
enum ConsoleLog {
    static func tail(_ plan: StartPlan, bytes: Int = 600) -> String? {
        guard !plan.runDir.isEmpty else { return nil }
        let fd = Glibc.open("\(plan.runDir)/console.log", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return nil }
        _ = lseek(fd, max(0, size - off_t(bytes)), SEEK_SET)
        var buf = [UInt8](repeating: 0, count: bytes)
        let n = read(fd, &buf, bytes)
        guard n > 0 else { return nil }
        // Guest output is untrusted: printable ASCII only.
        return String(decoding: buf[0..<n].map { ($0 >= 0x20 && $0 < 0x7f) ? $0 : 0x20 }, as: UTF8.self).trimmingSpaces
    }
}
