// Which domain an admin call names, decided once, before the policy is asked.
//
// qubesd accepts `uuid:<UUID>` wherever a destination name goes. If the policy
// and the handler each read the destination their own way, a second spelling
// of the same domain can pass the policy as "someone else" and still reach the
// domain in the handler (issue 11, finding 11: `uuid:<VAULT-UUID-IN-UPPER-CASE>`
// fell to @default in the policy, which @anyvm matched, while the handler
// found vault). So the destination is resolved here to the domain's one name
// (a UUID is hex: compared in lower case), and both the policy and the handler
// get that name. A destination that names no domain stays unknown: from a
// domain it is refused like any denied call, never evaluated as @default.
import Domains

enum AdminDestination {
    enum Resolution: Equatable {
        /// The domain's name (`dom0` for the admin domain).
        case domain(String)
        /// No domain has this name or UUID.
        case unknown
    }

    static func resolve(_ untrustedDest: String, in snapshot: DomainsSnapshot) -> Resolution {
        if untrustedDest == AdminPermission.adminDomain { return .domain(untrustedDest) }
        if untrustedDest.hasPrefix("uuid:") {
            guard let uuid = DomainUUID(String(untrustedDest.dropFirst(5)).lowercased()) else { return .unknown }
            guard let d = snapshot.allDomains().first(where: { $0.uuid == uuid }) else { return .unknown }
            return .domain(d.name)
        }
        return snapshot.contains(untrustedDest) ? .domain(untrustedDest) : .unknown
    }
}
