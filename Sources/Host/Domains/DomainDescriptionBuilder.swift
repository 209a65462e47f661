// What a domain is, said once for every provider (ABI 1.2): volumes by role
// from the volume plan, the shares every domain gets, the agent's channel as
// its vchan backend describes it, the kernel from the pool for providers that
// boot one, the label, the agent and its environment. Nothing here says how
// a provider does it: native binds, libvirt writes disks and a command line.
import Domains
import PluginABI
#if canImport(Glibc)
import Glibc
#endif

struct DomainDescriptionBuilder {
    /// The staged agent binaries (GuestBin), seen at /.odyssey/bin.
    let guestBin: String
    let domainRpcDir: String?
    let addonView: String?
    let kernelDir: String

    static let agentPathInDomain = GuestBin.pathInDomain + "/odyssey-agent"
    /// Names and values reach a guest kernel command line: no spaces, no
    /// control characters, no quotes.
    static func isCommandLineSafe(_ s: String) -> Bool {
        s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != 0x22 && $0 != 0x27 && $0 != 0x5c }
    }

    func build(_ name: String, _ snap: DomainsSnapshot, plan: StartPlan, channel: DomainDescriptionSpec.Channel,
               bootsKernel: Bool) throws(OdysseyError) -> DomainDescriptionSpec {
        var d = DomainDescriptionSpec()
        d.volumes = plan.describedVolumes
        d.runDir = plan.runDir
        d.channel = channel
        d.shares = [.init(hostPath: guestBin, guestPath: GuestBin.pathInDomain, tag: "odybin")]
        if let dir = domainRpcDir, Sys.isDirectory(dir) { d.shares.append(.init(hostPath: dir, guestPath: "/etc/odyssey/rpc", tag: "odyrpc")) }
        // The directory, not its files, is shared: an add-on installed later
        // shows up in running domains after a reload.
        if let dir = addonView, Sys.isDirectory(dir) { d.shares.append(.init(hostPath: dir, guestPath: AddonView.pathInDomain, tag: "odyaddons")) }
        d.agentPath = Self.agentPathInDomain
        let user = (try? snap.property("default_user", of: name).value) ?? "user"
        guard !user.isEmpty, Self.isCommandLineSafe(user) else { throw OdysseyError(.invalid, "\(name): default_user '\(user)' is not a plain user name") }
        d.agentEnv = ["ODYSSEY_DEFAULT_USER=\(user)"]
        d.label = (try? snap.domain(name).label.name) ?? ""
        if bootsKernel { try addKernel(name, snap, &d) }
        return d
    }

    /// The domain's `kernel` (a name in the pool; empty: `default`) and
    /// `kernelopts`. A missing kernel fails the start at once, naming the fix.
    private func addKernel(_ name: String, _ snap: DomainsSnapshot, _ d: inout DomainDescriptionSpec) throws(OdysseyError) {
        let k = (try? snap.property("kernel", of: name).value) ?? ""
        let entry = k.isEmpty ? "default" : k
        guard entry.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2e || $0 == 0x2d || $0 == 0x5f || $0 == 0x2b }),
              entry != ".", entry != ".." else {
            throw OdysseyError(.invalid, "\(name): kernel '\(k)' is not a name in the kernel pool \(kernelDir)")
        }
        let dir = Path.join(kernelDir, entry)
        // The uncompressed vmlinux (PVH entry) where the kit made one: under
        // TCG the guest decompressing vmlinuz costs seconds of every boot.
        let kernel = Sys.exists(Path.join(dir, "vmlinux")) ? Path.join(dir, "vmlinux") : Path.join(dir, "vmlinuz")
        let initrd = Path.join(dir, "initrd.img")
        guard Sys.exists(kernel), Sys.exists(initrd) else {
            let have = (try? Sys.listDirectory(kernelDir))?.sorted().joined(separator: ", ") ?? ""
            throw OdysseyError(.notFound, "\(name) boots a kernel of its own, and the kernel pool \(kernelDir) has no '\(entry)' "
                               + "(vmlinuz + initrd.img)\(have.isEmpty ? "" : "; it has: \(have)"). "
                               + "Run scripts/guest-kit to fetch Debian's kernel and build the initrd (make demo and make test do).")
        }
        // Resolve `default` (a symlink) once, so a domain keeps the kernel it
        // started with even if the pool's default moves while it runs.
        d.kernel = Sys.realPath(kernel) ?? kernel
        d.initrd = Sys.realPath(initrd) ?? initrd
        let modules = Path.join(dir, "modules.img")
        if Sys.exists(modules) {
            d.volumes.append(.init(role: .modules, form: .image, readOnly: true, path: Sys.realPath(modules) ?? modules))
        }
        let opts = (try? snap.property("kernelopts", of: name).value) ?? ""
        // odyssey.* keys are the host's (the boot contract), but for the
        // boot trace, which only prints timestamps (docs/guest-kit.md).
        let words = opts.split(separator: " ").map(String.init)
        guard words.allSatisfy({ Self.isCommandLineSafe($0) && (!$0.hasPrefix("odyssey.") || $0 == "odyssey.trace=1") }) else {
            throw OdysseyError(.invalid, "\(name): kernelopts must be plain options (no quotes, control characters or odyssey.* keys but odyssey.trace=1)")
        }
        d.kernelopts = opts
    }
}
