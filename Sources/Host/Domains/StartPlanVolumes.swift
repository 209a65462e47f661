// The volume plan (Domains) as the ABI's volumes by role.
import Domains

extension StartPlan {
    var describedVolumes: [DomainDescriptionSpec.Volume] {
        var v: [DomainDescriptionSpec.Volume] = [
            .init(role: .root, form: .tree, snapshot: rootMode == .snapshot, path: rootDir),
        ]
        if let privateDir { v.append(.init(role: .private, form: .tree, path: privateDir)) }
        // Scratch space: the provider makes it (native: a tmpfs; a VM: swap).
        v.append(.init(role: .volatile, form: .none, path: ""))
        return v
    }
}
