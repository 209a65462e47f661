// vmm-xen: the ABI entry point and the one factory ("xen"); the ops table
// is PluginKit's VmmOps. Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit

/// PAUSE: libxl_domain_pause/unpause. LIFECYCLE_EVENTS: Running/Paused/
/// Halting are emitted by this plugin when its own calls succeed (libxl has
/// no event for them); Halting/Crashed/Halted for shutdowns and deaths come
/// from libxl domain-death watches, whoever caused them. PERSISTENT:
/// definitions live in a state file under `state_dir` (libxl itself keeps
/// none). HARDWARE_VIRT: every domain is a PV/PVH guest with its own kernel
/// under the Xen hypervisor (the host reads it as "boots a kernel": the
/// description then carries the guest kit's kernel and initrd).
/// BLOCK_VOLUMES: volumes arrive as disk images and become blkback disks
/// (XenGuestLayout, XenRunFiles). CHANNEL_XEN: the agent's channel is a
/// vchan (vchan-xen), which needs no device: the guest is told `odyssey.vchan=xen`.
let xenCapabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT
    | ODY_VMM_CAP_HARDWARE_VIRT | ODY_VMM_CAP_BLOCK_VOLUMES | ODY_VMM_CAP_CHANNEL_XEN

private let entry = PluginEntry(
    id: "vmm-xen", version: "0.1.0", license: "Apache-2.0",
    description: "Xen PV/PVH domains through libxl (libxenlight)",
    factories: [VmmOps.factory("xen", capabilities: xenCapabilities, open: xlOpen)])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}
