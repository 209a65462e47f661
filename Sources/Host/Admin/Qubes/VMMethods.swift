// admin.vmclass.List, admin.vm.List, admin.vm.Create.<Class>,
// admin.vm.CreateDisposable, admin.vm.Remove, admin.vm.CurrentState.
import Domains

extension QubesAPI {
    func vmMethods() -> [AdminMethod] {
        var out: [AdminMethod] = [
            AdminMethod("admin.vmclass.List", argument: .none, destination: .adminVM, scope: .global, access: .read) { _ in
                QubesAPI.lines(DomainClass.allCases.map(\.rawValue).sorted())
            },
            AdminMethod("admin.vm.List", argument: .none, scope: .global, access: .read) { [self] c throws(AdminError) in
                let snap = store.snapshot()
                let names: [String]
                if c.destIsAdmin { names = snap.domainNames } else {
                    _ = try domain { () throws(DomainError) in try snap.domain(c.dest) }
                    names = [c.dest]
                }
                let visible = permission.visible(names, method: c.method, caller: c.caller)
                var out: [UInt8] = []
                out.reserveCapacity(names.count * 80)
                for n in names where visible.contains(n) {
                    guard let d = try? snap.domain(n) else { continue }
                    out += Array("\(n) class=\(d.klass.rawValue) state=\(lifecycle.powerState(n).rawValue) uuid=\(d.uuid.text)\n".utf8)
                }
                return out
            },
            AdminMethod("admin.vm.CreateDisposable", argument: .none, payload: .optional, scope: .global, access: .write) { [self] c throws(AdminError) in
                guard c.payload.isEmpty || c.payload == Array("uuid".utf8) else {
                    throw .value("Invalid payload for admin.vm.CreateDisposable: expected the empty string or 'uuid'")
                }
                let template: String
                if c.destIsAdmin {
                    let v = try domain { () throws(DomainError) in try store.property("default_dispvm", of: c.caller).value }
                    guard !v.isEmpty else { throw AdminError("QubesException", "\(c.caller) has no default_dispvm") }
                    template = v
                } else {
                    template = c.dest
                }
                let caller = c.caller
                let d = try domain { () throws(DomainError) in
                    let d = try store.createDisposable(from: template, caller: caller == "dom0" ? nil : caller)
                    if caller != "dom0" { try store.addTag("disp-created-by-\(caller)", to: d.name) }
                    return d
                }
                do throws(DomainError) { try daemon.volumes.createVolumes(d.name, klass: d.klass) } catch {
                    try? store.remove(d.name)
                    throw error.adminError
                }
                return Array((c.payload.isEmpty ? d.name : "uuid:\(d.uuid.text)").utf8)
            },
            AdminMethod("admin.vm.Remove", argument: .none, scope: .global, access: .write) { [self] c throws(AdminError) in
                if c.destIsAdmin { throw AdminError("QubesVMInUseError", "'dom0' cannot be removed") }
                _ = try existing(c.dest)
                guard lifecycle.powerState(c.dest) == .halted else {
                    throw AdminError("QubesVMNotHaltedError", "\(c.dest) is not halted (state \(lifecycle.powerState(c.dest).rawValue)); shut it down first")
                }
                daemon.runtime.undefine(c.dest)   // the backend's definition (a native one holds a uid range)
                try domain { () throws(DomainError) in try store.remove(c.dest) }
                do throws(DomainError) { try daemon.volumes.removeVolumes(c.dest) } catch {
                    daemon.logger.error("removing volumes of \(c.dest): \(error) (the next start-up cleans them)")
                }
                return []
            },
            AdminMethod("admin.vm.CurrentState", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                _ = try existing(c.dest)
                let s = lifecycle.currentState(c.dest)
                return Array("mem=\(s.memoryKiB) mem_static_max=\(s.maxmemKiB) cputime=\(s.cputimeNs) power_state=\(s.state.rawValue)".utf8)
            },
        ]
        for klass in DomainClass.allCases where klass.creatable {
            out.append(AdminMethod("admin.vm.Create.\(klass.rawValue)", argument: .optional, payload: .required,
                                   destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                try create(klass, c)
            })
        }
        return out
    }

    /// A clone copies the source's root: the caller must have the read right on
    /// the source, as Qubes asks for it on the volume cloned from (here: the
    /// policy for admin.vm.volume.Info+root with the source as target, i.e.
    /// admin-local-ro). Without it a delegate cloned a domain it could not
    /// read (issue 11, finding 10). Refused like any denied call.
    private func checkMayClone(_ source: String, caller: String) throws(AdminError) {
        guard permission.allows(method: "admin.vm.volume.Info", argument: "root", caller: caller, dest: source) else {
            daemon.logger.notice("admin: denied a clone of \(source) to \(caller): no read right on the source")
            throw .permissionDenied()
        }
    }

    /// admin.vm.Create.<Class>+[TEMPLATE] with payload `name=NAME label=LABEL`.
    func create(_ klass: DomainClass, _ c: AdminCall) throws(AdminError) -> [UInt8] {
        let kv = try QubesAPI.keyValues(c.payload, allowed: ["name", "label"])
        guard let name = kv["name"], let label = kv["label"] else { throw .protocolError("Missing name or label") }
        guard !label.isEmpty, !label.allSatisfy(\.isNumber) else { throw .protocolError("label must be a name, not an index") }
        let snap = store.snapshot()
        var template: String? = nil
        var cloneFrom: String? = nil
        if !c.argument.isEmpty {
            guard snap.contains(c.argument) else { throw AdminError("QubesVMNotFoundError", "No such domain: '\(c.argument)'") }
            if klass.hasTemplate { template = c.argument }
            else if klass == .standaloneVM {   // qvm-create -C StandaloneVM -t T: a copy of T's root
                try checkMayClone(c.argument, caller: c.caller)
                cloneFrom = c.argument
            }
            else { throw .value("\(klass.rawValue) cannot be based on template") }
        }
        if snap.contains(name) { throw .value("VM \(name) already exists") }
        let caller = c.caller == "dom0" ? nil : c.caller
        let source = try domain { () throws(DomainError) in try cloneFrom.map { (t) throws(DomainError) in try snap.rootSource(of: t) } }
        let d = try domain { () throws(DomainError) in
            try store.create(name, class: klass, label: label, template: template, caller: caller,
                             rootHostLinked: source.map { daemon.volumes.rootIsHostLinked($0) } ?? false)
        }
        do throws(DomainError) {
            try daemon.volumes.createVolumes(name, klass: d.klass, cloneRootFrom: source)
        } catch {
            try? store.remove(name)
            throw error.adminError
        }
        return []
    }
}
