// vmm-libvirt: the ABI entry point, the one factory ("libvirt") and its ops
// table. Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit

/// Capabilities are static per factory, so they must hold for every URI the
/// factory can be configured with. PAUSE, LIFECYCLE_EVENTS and PERSISTENT hold
/// for every libvirt driver (with the test driver, "persistent" means: for as
/// long as the connection lives). HARDWARE_VIRT is deliberately NOT claimed:
/// it is a security property, and `lxc:///` or `test:///` URIs give no
/// separate kernel. Policy that needs a separate kernel must not trust this
/// factory for it.
let libvirtCapabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT

/// The ops table: every slot filled, all static, handed out for the process lifetime.
nonisolated(unsafe) private let vmmOps: UnsafeMutablePointer<ody_vmm_ops> = {
    let p = UnsafeMutablePointer<ody_vmm_ops>.allocate(capacity: 1)
    p.initialize(to: ody_vmm_ops(
        struct_size: UInt32(MemoryLayout<ody_vmm_ops>.size), version: 0,
        open: lvOpen, close: lvClose, define: lvDefine, undefine: lvUndefine,
        start: lvStart, shutdown: lvShutdown, kill: lvKill, pause: lvPause, unpause: lvUnpause,
        get_info: lvGetInfo, list: lvList))
    return p
}()

nonisolated(unsafe) private let factoryTable: UnsafeMutablePointer<UnsafePointer<ody_factory>?> = {
    let f = UnsafeMutablePointer<ody_factory>.allocate(capacity: 1)
    f.initialize(to: ody_factory(struct_size: UInt32(MemoryLayout<ody_factory>.size), kind: ODY_KIND_VMM.rawValue,
                                 name: immortalCString("libvirt"), capabilities: libvirtCapabilities,
                                 ops: UnsafeRawPointer(vmmOps)))
    let t = UnsafeMutablePointer<UnsafePointer<ody_factory>?>.allocate(capacity: 1)
    t.initialize(to: UnsafePointer(f))
    return t
}()

nonisolated(unsafe) private let pluginID = immortalCString("vmm-libvirt")
nonisolated(unsafe) private let pluginVersion = immortalCString("0.1.0")
nonisolated(unsafe) private let pluginLicense = immortalCString("Apache-2.0")
nonisolated(unsafe) private let pluginDescription = immortalCString("libvirt domains (any libvirt URI) through the libvirt C API")

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let request, let info else { return fail(err, ODY_E_INVALID, "entry: NULL request or info") }
    let needReq = MemoryLayout<ody_entry_request>.offset(of: \ody_entry_request.flags)! + MemoryLayout<UInt32>.size
    guard Int(request.pointee.struct_size) >= needReq else {
        return fail(err, ODY_E_ABI, "entry: request struct_size \(request.pointee.struct_size) too small")
    }
    guard request.pointee.abi_major == ODY_ABI_MAJOR else {
        return fail(err, ODY_E_ABI, "vmm-libvirt speaks ABI major \(ODY_ABI_MAJOR), host offers \(request.pointee.abi_major)")
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
