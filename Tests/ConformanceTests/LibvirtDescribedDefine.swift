// A define that carries the ABI 1.2 description, for the libvirt tests:
// the host's DomainSpec does not carry one yet (the lead's DomainRuntime
// work adds it), so until then this builds the full ody_domain_config here
// and calls the plugin's own define slot on the backend's instance, exactly
// as VmmBackend.define does for the fields before 1.2.
// TODO(lead): replace with `backend.define(spec)` once DomainSpec has the description.
import Foundation
import Host
import PluginABI
import PluginKit

enum DescribedDefine {
    /// The instance handle VmmBackend keeps private (read by reflection; tests only).
    static func handle(_ backend: VmmBackend) -> OpaquePointer? {
        Mirror(reflecting: backend).children.first { $0.label == "handle" }?.value as? OpaquePointer
    }

    static func define(_ backend: VmmBackend, _ spec: DomainSpec, _ d: DomainDescription, flags: UInt32 = 0) throws(OdysseyError) {
        guard let handle = handle(backend) else { throw OdysseyError(.plugin, "no instance handle in VmmBackend") }
        let ops = backend.factory.ops.assumingMemoryBound(to: ody_vmm_ops.self)
        guard let defineFn = ops.pointee.define else { throw OdysseyError(.unsupported, "no define slot") }
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func c(_ s: String) -> UnsafePointer<CChar> { let p = strdup(s)!; owned.append(p); return UnsafePointer(p) }

        var blob: [UInt8] = []
        for (k, v) in spec.params { blob += Array("\(k)=\(v)".utf8); blob.append(0) }
        var cfg = ody_domain_config()
        cfg.struct_size = UInt32(MemoryLayout<ody_domain_config>.size)
        guard FixedCString.write(spec.name, into: &cfg.name) else { throw OdysseyError(.invalid, "domain name too long") }
        FixedCString.write(spec.uuid, into: &cfg.uuid)
        cfg.memory_mib = spec.memoryMiB
        cfg.maxmem_mib = spec.maxmemMiB
        cfg.vcpus = spec.vcpus
        let volumes = d.volumes.map { v in
            ody_volume(struct_size: UInt32(MemoryLayout<ody_volume>.size), role: v.role.rawValue, form: v.form.rawValue,
                       flags: (v.snapshot ? ODY_VOLUME_F_SNAPSHOT : 0) | (v.readOnly ? ODY_VOLUME_F_READ_ONLY : 0),
                       path: c(v.path), size_mib: v.sizeMiB)
        }
        let shares = d.shares.map { s in
            ody_share(struct_size: UInt32(MemoryLayout<ody_share>.size), flags: s.readOnly ? ODY_SHARE_F_READ_ONLY : 0,
                      host_path: c(s.hostPath), guest_path: c(s.guestPath), tag: c(s.tag))
        }
        var channel = ody_channel_desc()
        channel.struct_size = UInt32(MemoryLayout<ody_channel_desc>.size)
        if let ch = d.channel { _ = ch.write(to: &channel) }
        let env: [UnsafePointer<CChar>?] = d.agentEnv.map { c($0) } + [nil]
        cfg.kernel = c(d.kernel); cfg.initrd = c(d.initrd); cfg.kernelopts = c(d.kernelopts)
        cfg.label = c(d.label); cfg.agent_path = c(d.agentPath); cfg.run_dir = c(d.runDir)
        var err = ody_error()
        err.struct_size = UInt32(MemoryLayout<ody_error>.size)
        let rc: Int32 = blob.withUnsafeBufferPointer { b in
            volumes.withUnsafeBufferPointer { vs in
                shares.withUnsafeBufferPointer { ss in
                    env.withUnsafeBufferPointer { es in
                        withUnsafePointer(to: &channel) { ch in
                            cfg.params = b.isEmpty ? nil : UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self)
                            cfg.params_len = UInt32(b.count)
                            cfg.volume_count = UInt32(vs.count); cfg.volumes = vs.isEmpty ? nil : vs.baseAddress
                            cfg.share_count = UInt32(ss.count); cfg.shares = ss.isEmpty ? nil : ss.baseAddress
                            cfg.channel = d.channel == nil ? nil : ch
                            cfg.agent_env = es.baseAddress
                            return defineFn(handle, &cfg, flags, &err)
                        }
                    }
                }
            }
        }
        guard rc < 0 else { return }
        let code: OdysseyError.Code = switch rc {
        case ODY_E_INVALID.rawValue, ODY_E_FLAGS.rawValue: .invalid
        case ODY_E_EXISTS.rawValue: .exists
        case ODY_E_NOT_FOUND.rawValue: .notFound
        case ODY_E_STATE.rawValue: .state
        default: .backend
        }
        throw OdysseyError(code, "define \(spec.name): \(FixedCString.read(err.message))")
    }
}
