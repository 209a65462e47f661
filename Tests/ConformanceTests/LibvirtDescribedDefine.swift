// The libvirt tests write descriptions as PluginKit's DomainDescription (the
// provider's reading side, which LibvirtDomainXML takes) and define them
// through the host's own VmmBackend, which marshals DomainDescriptionSpec.
import Host
import PluginKit

extension DomainDescription {
    /// The same description as the host's start path would hand it.
    var hostSpec: DomainDescriptionSpec {
        var s = DomainDescriptionSpec()
        s.volumes = volumes.map {
            .init(role: .init(rawValue: $0.role.rawValue)!, form: .init(rawValue: $0.form.rawValue)!, snapshot: $0.snapshot,
                  readOnly: $0.readOnly, path: $0.path, sizeMiB: $0.sizeMiB)
        }
        s.shares = shares.map { .init(hostPath: $0.hostPath, guestPath: $0.guestPath, tag: $0.tag, readOnly: $0.readOnly) }
        s.channel = channel.map { .init(kind: .init(rawValue: $0.kind.rawValue)!, path: $0.path, name: $0.name, cid: $0.cid) }
        s.kernel = kernel; s.initrd = initrd; s.kernelopts = kernelopts; s.label = label
        s.agentPath = agentPath; s.agentEnv = agentEnv; s.runDir = runDir
        return s
    }
}

enum DescribedDefine {
    static func define(_ backend: VmmBackend, _ spec: DomainSpec, _ d: DomainDescription, flags: UInt32 = 0) throws(OdysseyError) {
        var spec = spec
        spec.description = d.hostSpec
        try backend.define(spec, flags: flags)
    }
}
