// Who may call what. dom0 (the admin socket's authenticated local users, or
// the admin domain itself) may call everything. Any other domain's call is
// decided by the qrexec policy, with service = the method name, argument =
// `+ARG`, source = the caller and target = the destination (`@adminvm` for
// dom0) -- the way Qubes routes admin.* services from domains. The check runs
// before anything looks at the destination, so a denied caller learns nothing
// about what exists: the reply is the same PermissionDenied either way.
import Policy

struct AdminPermission: Sendable {
    let policy: @Sendable () -> PolicyService

    static let adminDomain = "dom0"

    static func target(_ dest: String) -> String { dest == adminDomain ? "@adminvm" : dest }

    func allows(method: String, argument: String, caller: String, dest: String) -> Bool {
        if caller == Self.adminDomain { return true }
        let p = policy()
        let d = p.policy.evaluate(PolicyRequest(service: method, argument: "+" + argument, source: caller,
                                                target: Self.target(dest)), in: p.system)
        return d.resolution == .allow
    }

    /// The names among `domains` the caller may see through `method` (admin.vm.List,
    /// admin.Events): one policy decision per domain, on one snapshot of the facts.
    func visible(_ domains: [String], method: String, caller: String) -> Set<String> {
        if caller == Self.adminDomain { return Set(domains) }
        let p = policy()
        let system = p.system, rules = p.policy
        var out = Set<String>()
        for name in domains {
            let d = rules.evaluate(PolicyRequest(service: method, argument: "+", source: caller, target: Self.target(name)), in: system)
            if d.resolution == .allow { out.insert(name) }
        }
        return out
    }
}
