// The volume plan (Domains) as the ABI's volumes by role, one to one.
import Domains

extension StartPlan {
    var describedVolumes: [DomainDescriptionSpec.Volume] {
        var out: [DomainDescriptionSpec.Volume] = volumes.map { v in
            let role: DomainDescriptionSpec.Role = switch v.role {
            case .root: .root
            case .private: .private
            case .volatile: .volatile
            case .modules: .modules
            }
            let form: DomainDescriptionSpec.Form = switch v.form {
            case .tree: .tree
            case .image: .image
            case .none: .none
            }
            return .init(role: role, form: form, snapshot: v.snapshot, readOnly: v.readOnly, path: v.path, sizeMiB: v.sizeMiB)
        }
        // Scratch space the provider makes (native: the tmpfs behind the
        // root's snapshot; a VM: swap), when the plan names none.
        if !out.contains(where: { $0.role == .volatile }) { out.append(.init(role: .volatile, form: .none, path: "")) }
        return out
    }
}
