// The domain facts the policy engine decides on, read from the store's
// committed state and the runtime's power states (never from a domain).
import Domains
import Policy

enum PolicyFacts {
    static func system(store: DomainStore, runtime: DomainLifecycle) -> PolicySystem {
        let snap = store.snapshot()
        var out: [PolicyDomain] = []
        for d in snap.allDomains() {
            let prop: (String) -> String? = { p in (try? snap.property(p, of: d.name)).map(\.value) }
            let dispvm = prop("default_dispvm").flatMap { $0.isEmpty ? nil : $0 }
            let internalFeature = (try? snap.feature("internal", of: d.name)).map { !$0.isEmpty && $0 != "0" } ?? false
            out.append(PolicyDomain(name: d.name, type: d.klass.rawValue, tags: (try? snap.tags(of: d.name)) ?? [],
                                    templateForDispvms: prop("template_for_dispvms") == "True", defaultDispvm: dispvm,
                                    powerState: runtime.powerState(d.name).rawValue, uuid: "\(d.uuid)",
                                    internal: internalFeature))
        }
        return PolicySystem(domains: out)
    }
}
