// The "xen" factory's open and its VmmBackendInstance conformance; the
// argument checks (struct sizes, flags, names) are PluginKit's VmmOps, the
// work is XenVmm's.
import PluginABI
import PluginKit

func xlOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    VmmOps.open(args, out, err) { args in
        switch XenVmm.open(host: HostServices(args), err: err) {
        case .success(let v): return .success(v)
        case .failure(let f): return .failure(f)
        }
    }
}

extension XenVmm: VmmBackendInstance {
    func define(_ c: DomainConfig, _ err: ErrorPointer) -> Int32 {
        var params = c.params
        for k in params.keys where !XenVmm.knownParams.contains(k) { params[k] = nil }  // the ABI says: ignore unknown keys
        // A described domain (ABI 1.2): the guest kit's kernel, the boot
        // contract's command line and the disks, worked out now and kept.
        if let d = c.description {
            switch XenGuestLayout.make(domain: c.name, d) {
            case .success(let layout): params.merge(layout.params) { _, ours in ours }
            case .failure(let r): return fail(err, ODY_E_INVALID, "define \(c.name): \(r.message)")
            }
        }
        for (k, v) in params where v.utf8.contains(0) {
            return fail(err, ODY_E_INVALID, "define \(c.name): param \(k) contains a NUL byte")
        }
        return define(XenDefinition(name: c.name, uuid: c.uuid, memoryMiB: c.memoryMiB, maxmemMiB: c.maxmemMiB,
                                    vcpus: c.vcpus, params: params), err)
    }

    func pause(_ name: String, _ err: ErrorPointer) -> Int32 { pause(name, paused: true, err) }

    func unpause(_ name: String, _ err: ErrorPointer) -> Int32 { pause(name, paused: false, err) }
}
