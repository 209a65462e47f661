// admin.Events: a stream on the caller's connection until it hangs up.
// dest dom0: every event; dest a domain: that domain's events. A caller other
// than dom0 sees only events about domains the policy lets it reach with
// admin.Events (and system events if it may call admin.Events on @adminvm).
import Domains
import Synchronization

extension QubesAPI {
    func eventsMethod() -> AdminMethod {
        AdminMethod("admin.Events", argument: .none, scope: .global, access: .read) { [self] c throws(AdminError) in
            guard let stream = c.stream else { throw .protocolError("admin.Events needs a streaming connection") }
            if !c.destIsAdmin { _ = try existing(c.dest) }
            try hub.serve(caller: c.caller, onlyDomain: c.destIsAdmin ? nil : c.dest, stream: stream,
                      filter: c.caller == AdminPermission.adminDomain ? nil : eventFilter(caller: c.caller))
            return []
        }
    }

    /// A caller other than dom0 sees an event about a domain it may call
    /// admin.Events on (system events: admin.Events on @adminvm). An event whose
    /// arguments name other domains (a vm property's new or old value, e.g.
    /// `netvm` set to vault) shows only if the caller could learn the same
    /// through the methods: it may list every domain named (admin.vm.List), or
    /// read the property itself (admin.vm.property.Get / admin.property.Get).
    /// Issue 11, finding 16: event arguments named domains the methods hid.
    private func eventFilter(caller: String) -> @Sendable ([AdminEvent]) -> [AdminEvent] {
        let permission = self.permission
        // Domains seen so far: their domain-delete is delivered though the
        // policy can no longer match a domain that is gone.
        let seen = Mutex(permission.visible(store.snapshot().domainNames, method: "admin.Events", caller: caller))
        return { events in
            let names = Array(Set(events.compactMap(\.domain)))
            let visible = permission.visible(names, method: "admin.Events", caller: caller)
            let dom0 = AdminPermission.adminDomain
            let system = permission.allows(method: "admin.Events", argument: "", caller: caller, dest: dom0)
            var memo: [String: Bool] = [:]
            func allows(_ method: String, _ argument: String, _ dest: String) -> Bool {
                let key = method + "\u{0}" + argument + "\u{0}" + dest
                if let known = memo[key] { return known }
                let ok = permission.allows(method: method, argument: argument, caller: caller, dest: dest)
                memo[key] = ok
                return ok
            }
            func namesOnlyVisible(_ e: AdminEvent) -> Bool {
                guard let (property, named) = EventDomainArguments.of(e), !named.isEmpty else { return true }
                if named.allSatisfy({ allows("admin.vm.List", "", $0) }) { return true }
                return e.domain.map { allows("admin.vm.property.Get", property, $0) } ?? allows("admin.property.Get", property, dom0)
            }
            return seen.withLock { seen in
                events.filter { e in
                    guard let d = e.domain else { return system && namesOnlyVisible(e) }
                    if visible.contains(d) && namesOnlyVisible(e) { seen.insert(d); return true }
                    if e.name == "domain-delete", seen.remove(d) != nil { return true }
                    return false
                }
            }
        }
    }
}

/// The domains an event's arguments name, beyond the one it is about.
enum EventDomainArguments {
    /// (property, names) for property-set/-reset of a vm-typed property; nil otherwise.
    static func of(_ e: AdminEvent) -> (property: String, names: [String])? {
        // The pre-events carry the same values: filtered alike.
        let prefix = ["property-set:", "property-reset:", "property-pre-set:", "property-pre-reset:"].first { e.name.hasPrefix($0) }
        guard let prefix else { return nil }
        let property = String(e.name.dropFirst(prefix.count))
        let table = e.domain == nil ? PropertyTable.global : PropertyTable.domain
        guard table.first(where: { $0.name == property })?.type == .vm else { return nil }
        let names = e.arguments.filter { $0.0 == "newvalue" || $0.0 == "oldvalue" }.map(\.1).filter { !$0.isEmpty }
        return (property, names)
    }
}
