// The "libvirt" factory's open and its VmmBackendInstance conformance; the
// argument checks (struct sizes, flags, names) are PluginKit's VmmOps, the
// work is LibvirtVmm's (DomainOps.swift).
import CLibvirt
import PluginABI
import PluginKit

func lvOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    VmmOps.open(args, out, err) { args in
        switch LibvirtVmm.open(host: HostServices(args), err: err) {
        case .success(let v): return .success(v)
        case .failure(let f): return .failure(f)
        }
    }
}

extension LibvirtVmm: VmmBackendInstance {
    func pause(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("pause", name, needs: .running, err) { virt.virDomainSuspend($0) }
    }

    func unpause(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("unpause", name, needs: .running, err) { virt.virDomainResume($0) }
    }
}
