// The loaded add-ons as packages for the view and for `ody addons`: the
// manifest's lists, the policy file beside the manifest (or, if the package
// ships none, describe()'s policy_text), and the instance config.
#if canImport(Glibc)
import Glibc
#endif
import PluginABI

extension Backends {
    func makeAddonPackages() -> [AddonPackage] {
        var out: [AddonPackage] = []
        for p in registry.loaded {
            for mf in p.manifest.factories where mf.kind == .addon {
                guard let f = p.factories.first(where: { $0.kind == .addon && $0.name == mf.name }) else { continue }
                out.append(AddonPackage(
                    id: p.id, libraryPath: p.libraryPath, factory: mf.name, services: mf.services,
                    commands: mf.commands, events: mf.events, policyFile: mf.policy,
                    policyText: mf.policy.flatMap { Self.policyText(file: Path.join(Path.dirname(p.manifestPath), $0), factory: f) },
                    config: instanceConfig(.addon, mf.name), description: p.description, version: p.version))
            }
        }
        return out
    }

    private static func policyText(file: String, factory f: LoadedFactory) -> String? {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { Sys.close(fd) }
            if let bytes = try? Sys.readAll(fd, limit: 1 << 20, what: file) { return String(decoding: bytes, as: UTF8.self) }
        }
        let table = f.ops.assumingMemoryBound(to: ody_addon_ops.self)
        guard let describe = table.pointee.describe, let d = describe(0) else { return nil }
        return ABIString.read(d.pointee.policy_text, limit: 1 << 20)
    }
}
