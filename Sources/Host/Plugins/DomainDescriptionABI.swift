// The host's side of the provider-neutral domain description (ABI 1.2):
// Swift values the start path fills, and their marshalling into the
// ody_domain_config a provider reads (PluginKit's DomainDescription is the
// reading side). Every C string and array lives until the define call ends.
import PluginABI

public struct DomainDescriptionSpec: Sendable, Equatable {
    public enum Role: UInt32, Sendable { case root = 1, `private` = 2, volatile = 3, modules = 4 }
    public enum Form: UInt32, Sendable { case tree = 1, image = 2, none = 3 }

    public struct Volume: Sendable, Equatable {
        public var role: Role
        public var form: Form
        public var snapshot = false
        public var readOnly = false
        public var path: String
        public var sizeMiB: UInt64 = 0
        public init(role: Role, form: Form, snapshot: Bool = false, readOnly: Bool = false, path: String, sizeMiB: UInt64 = 0) {
            self.role = role; self.form = form; self.snapshot = snapshot; self.readOnly = readOnly; self.path = path; self.sizeMiB = sizeMiB
        }
    }

    public struct Share: Sendable, Equatable {
        public var hostPath: String
        public var guestPath: String
        public var tag: String
        public var readOnly = true
        public init(hostPath: String, guestPath: String, tag: String, readOnly: Bool = true) {
            self.hostPath = hostPath; self.guestPath = guestPath; self.tag = tag; self.readOnly = readOnly
        }
    }

    public struct Channel: Sendable, Equatable {
        public enum Kind: UInt32, Sendable {
            case socketDir = 1, virtioSerial = 2, vsock = 3, xen = 4
            /// The provider capability that says it can wire this kind.
            public var capability: UInt64 {
                switch self {
                case .socketDir: ODY_VMM_CAP_CHANNEL_SOCKET_DIR
                case .virtioSerial: ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL
                case .vsock: ODY_VMM_CAP_CHANNEL_VSOCK
                case .xen: ODY_VMM_CAP_CHANNEL_XEN
                }
            }
            public var word: String {
                switch self { case .socketDir: "socket-dir"; case .virtioSerial: "virtio-serial"; case .vsock: "vsock"; case .xen: "xen" }
            }
        }
        public var kind: Kind
        public var path = ""
        public var name = ""
        public var cid: UInt32 = 0
        public init(kind: Kind, path: String = "", name: String = "", cid: UInt32 = 0) {
            self.kind = kind; self.path = path; self.name = name; self.cid = cid
        }
    }

    public var volumes: [Volume] = []
    public var shares: [Share] = []
    public var channel: Channel?
    public var kernel = ""
    public var initrd = ""
    public var kernelopts = ""
    public var label = ""
    public var agentPath = ""
    public var agentEnv: [String] = []
    public var runDir = ""
    public init() {}

    public func volume(_ role: Role) -> Volume? { volumes.first { $0.role == role } }
}

/// Keeps C copies of strings alive for one call.
final class CStrings {
    private var owned: [UnsafeMutablePointer<CChar>] = []
    func make(_ s: String) -> UnsafePointer<CChar> {
        let p = strdupOrDie(s)
        owned.append(p)
        return UnsafePointer(p)
    }
    private func strdupOrDie(_ s: String) -> UnsafeMutablePointer<CChar> {
        let bytes = Array(s.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return p
    }
    deinit { for p in owned { p.deallocate() } }
}

extension DomainDescriptionSpec {
    /// Fills the 1.2 members of `cfg` and runs `body` while every pointer is valid.
    public func withABI<R>(_ cfg: inout ody_domain_config, _ body: (inout ody_domain_config) throws(OdysseyError) -> R) throws(OdysseyError) -> R {
        let strings = CStrings()
        var cVolumes = volumes.map { v in
            ody_volume(struct_size: UInt32(MemoryLayout<ody_volume>.size), role: v.role.rawValue, form: v.form.rawValue,
                       flags: (v.snapshot ? ODY_VOLUME_F_SNAPSHOT : 0) | (v.readOnly ? ODY_VOLUME_F_READ_ONLY : 0),
                       path: strings.make(v.path), size_mib: v.sizeMiB)
        }
        var cShares = shares.map { s in
            ody_share(struct_size: UInt32(MemoryLayout<ody_share>.size), flags: s.readOnly ? ODY_SHARE_F_READ_ONLY : 0,
                      host_path: strings.make(s.hostPath), guest_path: strings.make(s.guestPath), tag: strings.make(s.tag))
        }
        var cChannel = ody_channel_desc()
        cChannel.struct_size = UInt32(MemoryLayout<ody_channel_desc>.size)
        if let channel {
            cChannel.kind = channel.kind.rawValue
            cChannel.cid = channel.cid
            ABIString.write(channel.path, into: &cChannel.path)
            ABIString.write(channel.name, into: &cChannel.name)
        }
        var env: [UnsafePointer<CChar>?] = agentEnv.map { strings.make($0) }
        env.append(nil)
        cfg.struct_size = UInt32(MemoryLayout<ody_domain_config>.size)
        cfg.volume_count = UInt32(cVolumes.count)
        cfg.share_count = UInt32(cShares.count)
        cfg.kernel = strings.make(kernel)
        cfg.initrd = strings.make(initrd)
        cfg.kernelopts = strings.make(kernelopts)
        cfg.label = strings.make(label)
        cfg.agent_path = strings.make(agentPath)
        cfg.run_dir = strings.make(runDir)
        let hasChannel = channel != nil
        return try withExtendedLifetime(strings) { () throws(OdysseyError) -> R in
            try OdysseyError.rethrowing {
                try cVolumes.withUnsafeMutableBufferPointer { vp in
                    try cShares.withUnsafeMutableBufferPointer { sp in
                        try env.withUnsafeMutableBufferPointer { ep in
                            try withUnsafePointer(to: &cChannel) { cp in
                                cfg.volumes = vp.isEmpty ? nil : UnsafePointer(vp.baseAddress!)
                                cfg.shares = sp.isEmpty ? nil : UnsafePointer(sp.baseAddress!)
                                cfg.agent_env = UnsafePointer(ep.baseAddress!)
                                cfg.channel = hasChannel ? cp : nil
                                return try body(&cfg)
                            }
                        }
                    }
                }
            }
        }
    }
}
