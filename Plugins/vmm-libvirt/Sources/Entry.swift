// vmm-libvirt: the ABI entry point and the one factory ("libvirt"); the ops
// table is PluginKit's VmmOps. Imports Glibc only (no Foundation) so the plugin maps fast.
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

private let entry = PluginEntry(
    id: "vmm-libvirt", version: "0.1.0", license: "Apache-2.0",
    description: "libvirt domains (any libvirt URI) through the libvirt C API",
    factories: [VmmOps.factory("libvirt", capabilities: libvirtCapabilities, open: lvOpen)])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}
