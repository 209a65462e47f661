// vmm-libvirt: the ABI entry point and the one factory ("libvirt"); the ops
// table is PluginKit's VmmOps. Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit

/// Capabilities are static per factory. The factory is for libvirt's QEMU
/// driver (qemu:///system; KVM where /dev/kvm works, TCG otherwise): a
/// separate guest kernel (HARDWARE_VIRT), volumes as disk images
/// (BLOCK_VOLUMES), the agent's channel over virtio-serial or vsock, and
/// libvirt's persistent definitions. `test:///default` stays usable for the
/// conformance suite's fast checks, but it boots nothing: it is a test
/// double, never a configuration to trust for isolation.
let libvirtCapabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT
    | ODY_VMM_CAP_HARDWARE_VIRT | ODY_VMM_CAP_BLOCK_VOLUMES | ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL | ODY_VMM_CAP_CHANNEL_VSOCK

private let entry = PluginEntry(
    id: "vmm-libvirt", version: "0.2.0", license: "Apache-2.0",
    description: "libvirt/QEMU VM domains through the libvirt C API",
    factories: [VmmOps.factory("libvirt", capabilities: libvirtCapabilities, open: lvOpen)])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}
