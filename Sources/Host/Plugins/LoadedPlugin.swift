// A plugin the host accepted: its manifest, what its entry answered, and its
// factories. Immutable once loaded; the library is never unloaded.
import PluginABI

public struct LoadedFactory: @unchecked Sendable {
    public let kind: InterfaceKind
    public let name: String
    public let capabilities: UInt64
    /// The plugin's ops table (ody_vmm_ops, ody_vchan_ops, ...), static in the plugin.
    public let ops: UnsafeRawPointer
    public let opsSize: UInt32
    public let opsVersion: UInt32
    public let pluginID: String

    public var qualifiedName: String { "\(kind.rawValue).\(name)" }
}

public struct LoadedPlugin: Sendable {
    public let manifestPath: String
    public let libraryPath: String
    public let manifest: PluginManifest
    public let id: String
    public let version: String
    public let license: String
    public let description: String
    public let abiMajor: UInt32
    public let abiMinor: UInt32
    public let factories: [LoadedFactory]
}

/// A library the loader refused, and why (one line, naming the file).
public struct RefusedPlugin: Sendable, Equatable {
    public let path: String
    public let reason: String
    public var line: String { "\(path): \(reason)" }
}

/// Capability bits as words, for `ody plugins`.
public enum CapabilityNames {
    public static func names(kind: InterfaceKind, bits: UInt64) -> [String] {
        let table: [(UInt64, String)] = switch kind {
        case .vmm: [(ODY_VMM_CAP_PAUSE, "pause"), (ODY_VMM_CAP_LIFECYCLE_EVENTS, "lifecycle-events"),
                    (ODY_VMM_CAP_PERSISTENT, "persistent"), (ODY_VMM_CAP_VOLUMES, "volumes"),
                    (ODY_VMM_CAP_ASYNC_START, "async-start"), (ODY_VMM_CAP_MEMORY_LIMIT, "memory-limit"),
                    (ODY_VMM_CAP_NAMESPACES, "namespaces"), (ODY_VMM_CAP_HARDWARE_VIRT, "hardware-virt"),
                    (ODY_VMM_CAP_BLOCK_VOLUMES, "block-volumes"), (ODY_VMM_CAP_CHANNEL_SOCKET_DIR, "channel-socket-dir"),
                    (ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL, "channel-virtio-serial"), (ODY_VMM_CAP_CHANNEL_VSOCK, "channel-vsock"),
                    (ODY_VMM_CAP_CHANNEL_XEN, "channel-xen")]
        case .vchan: [(ODY_VCHAN_CAP_FD_PASSING, "fd-passing"), (ODY_VCHAN_CAP_CROSS_KERNEL, "cross-kernel"),
                      (ODY_VCHAN_CAP_PEER_MUST_EXIST, "peer-must-exist")]
        case .addon: [(ODY_ADDON_CAP_ADMIN_SIDE, "admin-side"), (ODY_ADDON_CAP_DOMAIN_SIDE, "domain-side"),
                      (ODY_ADDON_CAP_EVENT_HOOKS, "event-hooks")]
        case .gui: []
        }
        var out = table.filter { bits & $0.0 != 0 }.map(\.1)
        let known = table.reduce(UInt64(0)) { $0 | $1.0 }
        if bits & ~known != 0 { out.append("0x" + String(bits & ~known, radix: 16)) }
        return out
    }
}
