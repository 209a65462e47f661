// admin.vm.feature.{List,Get,CheckWithTemplate,Set,Remove} and
// admin.vm.tag.{List,Get,Set,Remove}.
import Domains

extension QubesAPI {
    func featureTagMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.feature.List", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                QubesAPI.lines(try domain { () throws(DomainError) in try store.features(of: c.dest) }.keys.sorted())
            },
            AdminMethod("admin.vm.feature.Get", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try domain { () throws(DomainError) in try store.snapshot().feature(c.argument, of: c.dest) }.utf8)
            },
            AdminMethod("admin.vm.feature.CheckWithTemplate", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try domain { () throws(DomainError) in try store.snapshot().featureWithTemplate(c.argument, of: c.dest) }.utf8)
            },
            AdminMethod("admin.vm.feature.CheckWithAdminVM", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try checkFeature(c, template: false, netvm: false, adminVM: true).utf8)
            },
            AdminMethod("admin.vm.feature.CheckWithTemplateAndAdminVM", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try checkFeature(c, template: true, netvm: false, adminVM: true).utf8)
            },
            AdminMethod("admin.vm.feature.CheckWithNetvm", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                Array(try checkFeature(c, template: false, netvm: true, adminVM: false).utf8)
            },
            AdminMethod("admin.vm.feature.Set", argument: .required, payload: .optional, scope: .local, access: .write) { [self] c throws(AdminError) in
                let value = try QubesAPI.text(c.payload)
                try domain { () throws(DomainError) in try store.setFeature(c.argument, of: c.dest, to: value) }
                return []
            },
            AdminMethod("admin.vm.feature.Remove", argument: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                try domain { () throws(DomainError) in try store.removeFeature(c.argument, of: c.dest) }
                return []
            },


            AdminMethod("admin.vm.tag.List", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                QubesAPI.lines(try domain { () throws(DomainError) in try store.tags(of: c.dest) })
            },
            AdminMethod("admin.vm.tag.Get", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                let has = try domain { () throws(DomainError) in
                    try TagRules.validate(c.argument)
                    return try store.snapshot().hasTag(c.argument, c.dest)
                }
                return Array((has ? "1" : "0").utf8)
            },
            AdminMethod("admin.vm.tag.Set", argument: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                try domain { () throws(DomainError) in try store.addTag(c.argument, to: c.dest, caller: c.caller) }
                return []
            },
            AdminMethod("admin.vm.tag.Remove", argument: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                try domain { () throws(DomainError) in try store.removeTag(c.argument, from: c.dest, caller: c.caller) }
                return []
            },
        ]
    }

    /// The feature on the domain, else (as asked) on its template chain, its
    /// netvm chain, or the admin domain; QubesFeatureNotFoundError if none has it.
    private func checkFeature(_ c: AdminCall, template: Bool, netvm: Bool, adminVM: Bool) throws(AdminError) -> String {
        let snap = store.snapshot()
        let key = c.argument
        return try domain { () throws(DomainError) -> String in
            _ = try snap.domain(c.dest)
            if template, let v = try? snap.featureWithTemplate(key, of: c.dest) { return v }
            if let v = try? snap.feature(key, of: c.dest) { return v }
            if netvm {
                var seen: Set<String> = [c.dest]
                var next = (try? snap.property("netvm", of: c.dest).value) ?? ""
                while !next.isEmpty, seen.insert(next).inserted {
                    if let v = try? snap.feature(key, of: next) { return v }
                    next = (try? snap.property("netvm", of: next).value) ?? ""
                }
            }
            if adminVM, let v = try? snap.feature(key, of: AdminPermission.adminDomain) { return v }
            throw DomainError.featureNotFound(domain: c.dest, feature: key)
        }
    }
}
