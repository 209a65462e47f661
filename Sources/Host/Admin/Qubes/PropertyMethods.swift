// admin.vm.property.* (one domain) and admin.property.* (global), with
// qubesd's output formats:
//   Get         default={True|False} type={str|int|bool|vm|label} VALUE
//   GetAll      NAME default=... type=... VALUE   per line (\ and newline escaped)
//   GetDefault  type=TYPE VALUE, or nothing when there is no default
import Domains

extension QubesAPI {
    func propertyMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.property.List", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                QubesAPI.lines(try domain { () throws(DomainError) in try store.snapshot().propertyNames(of: c.dest) })
            },
            AdminMethod("admin.vm.property.Get", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(live(try domain { () throws(DomainError) in try store.property(c.argument, of: c.dest) }, of: c.dest).qubesGetLine.utf8)
            },
            AdminMethod("admin.vm.property.GetAll", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                let snap = store.snapshot()
                let d = try domain { () throws(DomainError) in try snap.domain(c.dest) }
                var out = ""
                for n in PropertyTable.names(for: d.klass) {
                    let line: String
                    if let v = try? snap.property(n, of: c.dest) { line = live(v, of: c.dest).qubesGetLine } else {
                        line = "default=True type=\(PropertyTable.definition(n, for: d.klass)!.type.rawValue) "
                    }
                    out += "\(n) \(QubesAPI.escapeLine(line))\n"
                }
                return Array(out.utf8)
            },
            AdminMethod("admin.vm.property.GetDefault", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                guard let stored = try domain({ () throws(DomainError) in try store.snapshot().propertyDefault(c.argument, of: c.dest) }) else { return [] }
                let v = live(stored, of: c.dest)
                return Array("type=\(v.type.rawValue) \(v.value)".utf8)
            },
            AdminMethod("admin.vm.property.Set", argument: .required, payload: .optional, scope: .local, access: .write) { [self] c throws(AdminError) in
                let value = try QubesAPI.text(c.payload)
                try domain { () throws(DomainError) in try store.setProperty(c.argument, of: c.dest, to: value) }
                return []
            },
            AdminMethod("admin.vm.property.Reset", argument: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                try domain { () throws(DomainError) in try store.resetProperty(c.argument, of: c.dest) }
                return []
            },
            AdminMethod("admin.vm.property.Help", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try domain { () throws(DomainError) in try store.snapshot().propertyHelp(c.argument, of: c.dest) }.utf8)
            },

            AdminMethod("admin.property.List", argument: .none, destination: .adminVM, scope: .global, access: .read) { [self] _ in
                QubesAPI.lines(store.snapshot().globalPropertyNames.sorted())
            },
            AdminMethod("admin.property.Get", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                Array(try domain { () throws(DomainError) in try store.globalProperty(c.argument) }.qubesGetLine.utf8)
            },
            AdminMethod("admin.property.GetAll", argument: .none, destination: .adminVM, scope: .global, access: .read) { [self] _ in
                let snap = store.snapshot()
                var out = ""
                for n in snap.globalPropertyNames.sorted() {
                    if let v = try? snap.globalProperty(n) { out += "\(n) \(QubesAPI.escapeLine(v.qubesGetLine))\n" }
                }
                return Array(out.utf8)
            },
            AdminMethod("admin.property.GetDefault", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                let v = try domain { () throws(DomainError) in try store.snapshot().globalPropertyDefault(c.argument) }
                return Array("type=\(v.type.rawValue) \(v.value)".utf8)
            },
            AdminMethod("admin.property.Set", argument: .required, payload: .optional, destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                let value = try QubesAPI.text(c.payload)
                try domain { () throws(DomainError) in try store.setGlobalProperty(c.argument, to: value) }
                return []
            },
            AdminMethod("admin.property.Reset", argument: .required, destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                try domain { () throws(DomainError) in try store.resetGlobalProperty(c.argument) }
                return []
            },
            AdminMethod("admin.property.Help", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                Array(try domain { () throws(DomainError) in try store.snapshot().globalPropertyHelp(c.argument) }.utf8)
            },
        ]
    }

    /// xid and start_time: the running domain's values (the store holds the halted ones).
    func live(_ v: PropertyValue, of name: String) -> PropertyValue {
        var v = v
        switch v.name {
        case "start_time" where lifecycle.powerState(name) != .halted:
            v.value = lifecycle.startTime(name).map { "\($0)" } ?? ""
        // No vmm provider reports a domain id through the plugin ABI yet (ody_domain_info
        // has none): -1 until one does, running or not.
        case "xid": v.value = "-1"
        default: break
        }
        return v
    }

    /// GetAll puts one property per line: backslash and newline are escaped.
    static func escapeLine(_ s: String) -> String {
        guard s.contains("\\") || s.contains("\n") else { return s }
        return s.replacingOccurrences("\\", "\\\\").replacingOccurrences("\n", "\\n")
    }
}

extension String {
    /// Foundation-free replace-all.
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
