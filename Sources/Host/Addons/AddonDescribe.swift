// An add-on's describe() must say what its manifest says: the same services
// on the same sides and the same policy file. The manifest is what admins
// read and what the add-ons view is built from; a library that disagrees
// with it is refused at load, with both lists in the message.
import PluginABI

enum AddonDescribe {
    /// nil if the library agrees with the manifest, else the reason.
    static func mismatch(_ f: LoadedFactory, manifest mf: PluginManifest.Factory) -> String? {
        let table = f.ops.assumingMemoryBound(to: ody_addon_ops.self)
        let need = MemoryLayout<ody_addon_ops>.offset(of: \ody_addon_ops.describe)! + MemoryLayout<UnsafeRawPointer?>.size
        guard Int(f.opsSize) >= need, let describe = table.pointee.describe else {
            return mf.services.isEmpty ? nil : "add-on \"\(f.name)\" has no describe(), but its manifest lists services"
        }
        guard let d = describe(0), Int(d.pointee.struct_size) >= MemoryLayout<ody_addon_desc>.size else {
            return "add-on \"\(f.name)\" describe() returned no description (or one too small)"
        }
        let desc = d.pointee
        guard desc.service_count <= 256, desc.service_count == 0 || desc.services != nil else {
            return "add-on \"\(f.name)\" describes \(desc.service_count) services without a table"
        }
        var described: [String] = []
        for i in 0..<Int(desc.service_count) {
            guard let s = desc.services[i], Int(s.pointee.struct_size) >= MemoryLayout<ody_addon_service>.size,
                  let name = ABIString.read(s.pointee.name, limit: 256) else {
                return "add-on \"\(f.name)\" service \(i) is NULL or too small"
            }
            let domain = UInt64(s.pointee.flags) & ODY_ADDON_CAP_DOMAIN_SIDE != 0
            let admin = UInt64(s.pointee.flags) & ODY_ADDON_CAP_ADMIN_SIDE != 0
            guard domain != admin else { return "add-on \"\(f.name)\" service \(name) must be exactly one of domain-side or admin-side" }
            described.append("\(name) (\(domain ? "domain" : "admin"))")
        }
        let declared = mf.services.map { "\($0.name) (\($0.side.rawValue))" }
        if described.sorted() != declared.sorted() {
            return "manifest/library mismatch: manifest lists services [\(declared.joined(separator: ", "))], describe() says [\(described.joined(separator: ", "))]"
        }
        let policy = ABIString.read(desc.policy_file_name, limit: 256)
        if policy != mf.policy {
            return "manifest/library mismatch: manifest policy file \(mf.policy ?? "none"), describe() says \(policy ?? "none")"
        }
        return nil
    }
}
