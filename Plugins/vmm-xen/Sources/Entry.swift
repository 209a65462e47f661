// vmm-xen: the ABI entry point, the one factory ("xen") and its ops
// table. Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit

/// PAUSE: libxl_domain_pause/unpause. LIFECYCLE_EVENTS: Running/Paused/
/// Halting are emitted by this plugin when its own calls succeed (libxl has
/// no event for them); Halting/Crashed/Halted for shutdowns and deaths come
/// from libxl domain-death watches, whoever caused them. PERSISTENT:
/// definitions live in a state file under `state_dir` (libxl itself keeps
/// none). HARDWARE_VIRT: every domain is a PV/PVH guest with its own kernel
/// under the Xen hypervisor.
let xenCapabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT
    | ODY_VMM_CAP_HARDWARE_VIRT

/// The ops table: every slot filled, all static, handed out for the process lifetime.
nonisolated(unsafe) private let vmmOps: UnsafeMutablePointer<ody_vmm_ops> = {
    let p = UnsafeMutablePointer<ody_vmm_ops>.allocate(capacity: 1)
    p.initialize(to: ody_vmm_ops(
        struct_size: UInt32(MemoryLayout<ody_vmm_ops>.size), version: 0,
        open: xlOpen, close: xlClose, define: xlDefine, undefine: xlUndefine,
        start: xlStart, shutdown: xlShutdown, kill: xlKill, pause: xlPause, unpause: xlUnpause,
        get_info: xlGetInfo, list: xlList))
    return p
}()

nonisolated(unsafe) private let factoryTable: UnsafeMutablePointer<UnsafePointer<ody_factory>?> = {
    let f = UnsafeMutablePointer<ody_factory>.allocate(capacity: 1)
    f.initialize(to: ody_factory(struct_size: UInt32(MemoryLayout<ody_factory>.size), kind: ODY_KIND_VMM.rawValue,
                                 name: immortalCString("xen"), capabilities: xenCapabilities,
                                 ops: UnsafeRawPointer(vmmOps)))
    let t = UnsafeMutablePointer<UnsafePointer<ody_factory>?>.allocate(capacity: 1)
    t.initialize(to: UnsafePointer(f))
    return t
}()

nonisolated(unsafe) private let pluginID = immortalCString("vmm-xen")
nonisolated(unsafe) private let pluginVersion = immortalCString("0.1.0")
nonisolated(unsafe) private let pluginLicense = immortalCString("Apache-2.0")
nonisolated(unsafe) private let pluginDescription = immortalCString("Xen PV/PVH domains through libxl (libxenlight)")

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let request, let info else { return fail(err, ODY_E_INVALID, "entry: NULL request or info") }
    let needReq = MemoryLayout<ody_entry_request>.offset(of: \ody_entry_request.flags)! + MemoryLayout<UInt32>.size
    guard Int(request.pointee.struct_size) >= needReq else {
        return fail(err, ODY_E_ABI, "entry: request struct_size \(request.pointee.struct_size) too small")
    }
    guard request.pointee.abi_major == ODY_ABI_MAJOR else {
        return fail(err, ODY_E_ABI, "vmm-xen speaks ABI major \(ODY_ABI_MAJOR), host offers \(request.pointee.abi_major)")
    }
    if let rc = checkFlags(request.pointee.flags, known: 0, "entry", err) { return rc }
    let needInfo = MemoryLayout<ody_plugin_info>.offset(of: \ody_plugin_info.factories)! + MemoryLayout<UnsafeRawPointer?>.size
    guard Int(info.pointee.struct_size) >= needInfo else {
        return fail(err, ODY_E_ABI, "entry: plugin info struct_size \(info.pointee.struct_size) too small")
    }
    info.pointee.abi_major = ODY_ABI_MAJOR
    info.pointee.abi_minor = min(request.pointee.abi_minor, ODY_ABI_MINOR)
    info.pointee.flags = 0
    info.pointee.id = pluginID
    info.pointee.version = pluginVersion
    info.pointee.license = pluginLicense
    info.pointee.description = pluginDescription
    info.pointee.factory_count = 1
    info.pointee.reserved = 0
    info.pointee.factories = UnsafePointer(factoryTable)
    return ODY_OK.rawValue
}
