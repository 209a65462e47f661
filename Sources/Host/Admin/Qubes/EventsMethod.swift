// admin.Events: a stream on the caller's connection until it hangs up.
// dest dom0: every event; dest a domain: that domain's events. A caller other
// than dom0 sees only events about domains the policy lets it reach with
// admin.Events (and system events if it may call admin.Events on @adminvm).
import Synchronization

extension QubesAPI {
    func eventsMethod() -> AdminMethod {
        AdminMethod("admin.Events", argument: .none, scope: .global, access: .read) { [self] c throws(AdminError) in
            guard let stream = c.stream else { throw .protocolError("admin.Events needs a streaming connection") }
            if !c.destIsAdmin { _ = try existing(c.dest) }
            hub.serve(caller: c.caller, onlyDomain: c.destIsAdmin ? nil : c.dest, stream: stream,
                      filter: c.caller == AdminPermission.adminDomain ? nil : eventFilter(caller: c.caller))
            return []
        }
    }

    private func eventFilter(caller: String) -> @Sendable ([AdminEvent]) -> [AdminEvent] {
        let permission = self.permission
        // Domains seen so far: their domain-delete is delivered though the
        // policy can no longer match a domain that is gone.
        let seen = Mutex(permission.visible(store.snapshot().domainNames, method: "admin.Events", caller: caller))
        return { events in
            let names = Array(Set(events.compactMap(\.domain)))
            let visible = permission.visible(names, method: "admin.Events", caller: caller)
            let system = permission.allows(method: "admin.Events", argument: "", caller: caller, dest: AdminPermission.adminDomain)
            return seen.withLock { seen in
                events.filter { e in
                    guard let d = e.domain else { return system }
                    if visible.contains(d) { seen.insert(d); return true }
                    if e.name == "domain-delete", seen.remove(d) != nil { return true }
                    return false
                }
            }
        }
    }
}
