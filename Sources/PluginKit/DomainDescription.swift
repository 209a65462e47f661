// The provider-neutral domain description (ABI 1.2), read once from an
// ody_domain_config into Swift values: every pointer, count and string is
// checked here, so a provider only maps roles to its own mechanisms.
import PluginABI

public struct VolumeDescription: Sendable, Equatable {
    public enum Role: UInt32, Sendable { case root = 1, `private` = 2, volatile = 3, modules = 4 }
    public enum Form: UInt32, Sendable { case tree = 1, image = 2, none = 3 }
    public var role: Role
    public var form: Form
    /// Writes go to a per-start copy-on-write layer the provider makes and
    /// discards at stop; `path` is never written.
    public var snapshot: Bool
    public var readOnly: Bool
    public var path: String
    public var sizeMiB: UInt64
    public init(role: Role, form: Form, snapshot: Bool = false, readOnly: Bool = false, path: String, sizeMiB: UInt64 = 0) {
        self.role = role; self.form = form; self.snapshot = snapshot; self.readOnly = readOnly
        self.path = path; self.sizeMiB = sizeMiB
    }
}

public struct ShareDescription: Sendable, Equatable {
    public var hostPath: String
    public var guestPath: String
    public var tag: String
    public var readOnly: Bool
    public init(hostPath: String, guestPath: String, tag: String, readOnly: Bool = true) {
        self.hostPath = hostPath; self.guestPath = guestPath; self.tag = tag; self.readOnly = readOnly
    }
}

public struct ChannelDescription: Sendable, Equatable {
    public enum Kind: UInt32, Sendable { case socketDir = 1, virtioSerial = 2, vsock = 3, xen = 4 }
    public var kind: Kind
    public var path: String
    public var name: String
    public var cid: UInt32
    public init(kind: Kind, path: String = "", name: String = "", cid: UInt32 = 0) {
        self.kind = kind; self.path = path; self.name = name; self.cid = cid
    }

    /// Reads a checked ody_channel_desc (vchan plugins fill one, the host
    /// hands it on); nil if its kind is unknown or its strings unterminated.
    public init?(_ c: ody_channel_desc) {
        guard let k = Kind(rawValue: c.kind),
              withUnsafeBytes(of: c.path, { $0.contains(0) }), withUnsafeBytes(of: c.name, { $0.contains(0) }) else { return nil }
        self.init(kind: k, path: FixedCString.read(c.path), name: FixedCString.read(c.name), cid: c.cid)
    }

    /// Fills an ody_channel_desc (a vchan plugin's describe_domain).
    public func write(to out: inout ody_channel_desc) -> Bool {
        out.kind = kind.rawValue
        out.flags = 0
        out.cid = cid
        return FixedCString.write(path, into: &out.path) && FixedCString.write(name, into: &out.name)
    }
}

/// What the host says a domain is (ody_domain_config since 1.2).
public struct DomainDescription: Sendable, Equatable {
    public var volumes: [VolumeDescription] = []
    public var shares: [ShareDescription] = []
    public var channel: ChannelDescription?
    public var kernel = ""
    public var initrd = ""
    public var kernelopts = ""
    public var label = ""
    public var agentPath = ""
    /// "KEY=VALUE" for the agent's environment.
    public var agentEnv: [String] = []
    public var runDir = ""
    public init() {}

    public func volume(_ role: VolumeDescription.Role) -> VolumeDescription? { volumes.first { $0.role == role } }

    /// Bounds on what a host may hand in (a hostile or broken host must not
    /// make a plugin read without end).
    static let maxVolumes: UInt32 = 16, maxShares: UInt32 = 32, maxEnv = 256, maxString = 4096

    public struct Malformed: Error { public let message: String; init(_ m: String) { message = m } }

    static func string(_ p: UnsafePointer<CChar>?, _ what: String) throws(Malformed) -> String {
        guard let p else { return "" }
        var n = 0
        while n <= maxString, p[n] != 0 { n += 1 }
        guard n <= maxString else { throw Malformed("\(what) is longer than \(maxString) bytes") }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    static func volume(_ v: ody_volume, _ i: Int) throws(Malformed) -> VolumeDescription {
        guard Int(v.struct_size) >= MemoryLayout<ody_volume>.size else { throw Malformed("volume \(i): struct_size \(v.struct_size) too small") }
        guard let role = VolumeDescription.Role(rawValue: v.role) else { throw Malformed("volume \(i): unknown role \(v.role)") }
        guard let form = VolumeDescription.Form(rawValue: v.form) else { throw Malformed("volume \(i): unknown form \(v.form)") }
        guard v.flags & ~(ODY_VOLUME_F_SNAPSHOT | ODY_VOLUME_F_READ_ONLY) == 0 else { throw Malformed("volume \(i): unknown flags") }
        let path = try string(v.path, "volume \(i) path")
        guard form == .none || path.hasPrefix("/") else { throw Malformed("volume \(i) (\(role)): path '\(path)' is not absolute") }
        return VolumeDescription(role: role, form: form, snapshot: v.flags & ODY_VOLUME_F_SNAPSHOT != 0,
                                 readOnly: v.flags & ODY_VOLUME_F_READ_ONLY != 0, path: path, sizeMiB: v.size_mib)
    }

    static func share(_ s: ody_share, _ i: Int) throws(Malformed) -> ShareDescription {
        guard Int(s.struct_size) >= MemoryLayout<ody_share>.size else { throw Malformed("share \(i): struct_size too small") }
        guard s.flags & ~ODY_SHARE_F_READ_ONLY == 0 else { throw Malformed("share \(i): unknown flags") }
        let h = try string(s.host_path, "share host_path"), g = try string(s.guest_path, "share guest_path")
        let t = try string(s.tag, "share tag")
        let tagOK = !t.isEmpty && t.utf8.count <= 31 && t.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
        guard h.hasPrefix("/"), g.hasPrefix("/"), tagOK else {
            throw Malformed("share \(i): need absolute paths and a tag of [a-z0-9_] (at most 31)")
        }
        return ShareDescription(hostPath: h, guestPath: g, tag: t, readOnly: s.flags & ODY_SHARE_F_READ_ONLY != 0)
    }

    /// nil when the config has no description (struct_size ends before it,
    /// or volume_count is 0); throws when something in it is malformed.
    public static func read(_ c: ody_domain_config) throws(Malformed) -> DomainDescription? {
        let end = MemoryLayout<ody_domain_config>.offset(of: \ody_domain_config.run_dir)! + MemoryLayout<UnsafeRawPointer?>.size
        // volume_count 0: params only (every description has a root volume).
        guard Int(c.struct_size) >= end, c.volume_count > 0 else { return nil }
        guard c.volume_count <= maxVolumes, c.share_count <= maxShares else {
            throw Malformed("\(c.volume_count) volumes / \(c.share_count) shares: at most \(maxVolumes) / \(maxShares)")
        }
        var d = DomainDescription()
        if c.volume_count > 0 {
            guard let vs = c.volumes else { throw Malformed("volume_count \(c.volume_count) with NULL volumes") }
            for i in 0..<Int(c.volume_count) {
                let v = try volume(vs[i], i)
                guard d.volume(v.role) == nil else { throw Malformed("volume \(i): role \(v.role) given twice") }
                d.volumes.append(v)
            }
        }
        if c.share_count > 0 {
            guard let ss = c.shares else { throw Malformed("share_count \(c.share_count) with NULL shares") }
            for i in 0..<Int(c.share_count) { d.shares.append(try share(ss[i], i)) }
        }
        if let ch = c.channel {
            guard Int(ch.pointee.struct_size) >= MemoryLayout<ody_channel_desc>.size,
                  let desc = ChannelDescription(ch.pointee) else { throw Malformed("channel: unknown kind or malformed") }
            d.channel = desc
        }
        d.kernel = try string(c.kernel, "kernel")
        d.initrd = try string(c.initrd, "initrd")
        d.kernelopts = try string(c.kernelopts, "kernelopts")
        d.label = try string(c.label, "label")
        d.agentPath = try string(c.agent_path, "agent_path")
        d.runDir = try string(c.run_dir, "run_dir")
        if let env = c.agent_env {
            var i = 0
            while let e = env[i] {
                guard i < maxEnv else { throw Malformed("agent_env has more than \(maxEnv) entries") }
                let s = try string(e, "agent_env")
                guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw Malformed("agent_env[\(i)] is not KEY=VALUE") }
                d.agentEnv.append(s)
                i += 1
            }
        }
        return d
    }
}
