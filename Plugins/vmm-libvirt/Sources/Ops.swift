// The "libvirt" factory's open and its VmmBackendInstance conformance; the
// argument checks (struct sizes, flags, names) are PluginKit's VmmOps, the
// work is LibvirtVmm's.
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
    func define(_ c: DomainConfig, _ err: ErrorPointer) -> Int32 {
        define(DomainDefinition(name: c.name, uuid: c.uuid, memoryMiB: c.memoryMiB, maxmemMiB: c.maxmemMiB,
                                vcpus: c.vcpus, params: c.params), err)
    }

    func start(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("start", name, needs: .stopped, err) { virt.virDomainCreate($0) }
    }

    func kill(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("kill", name, needs: .running, err) { virt.virDomainDestroy($0) }
    }

    func pause(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("pause", name, needs: .running, err) { virt.virDomainSuspend($0) }
    }

    func unpause(_ name: String, _ err: ErrorPointer) -> Int32 {
        simple("unpause", name, needs: .running, err) { virt.virDomainResume($0) }
    }
}
