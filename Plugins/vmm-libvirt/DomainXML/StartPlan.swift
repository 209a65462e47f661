// The files a start makes in the run directory (copy-on-write layers of
// SNAPSHOT volumes, scratch disks of NONE volumes, the channel socket's
// directory) and removes at stop. Kept in the domain's own <metadata>, so a
// restarted odysseyd can start, and clean up after, a domain it did not define.
import PluginKit

public struct StartPlan: Equatable, Sendable {
    public struct Snapshot: Equatable, Sendable {
        public var base: String
        public var file: String
        public init(base: String, file: String) { self.base = base; self.file = file }
    }
    public struct Scratch: Equatable, Sendable {
        public var file: String
        public var sizeMiB: UInt64
        public init(file: String, sizeMiB: UInt64) { self.file = file; self.sizeMiB = sizeMiB }
    }
    public var runDir = ""
    /// Which odysseyd defined the domain (`[vmm.libvirt] owner`): one
    /// libvirtd may serve other VMs and other odysseyd instances, and an
    /// instance lists, adopts, kills and undefines only its own.
    public var owner = ""
    public var snapshots: [Snapshot] = []
    public var scratch: [Scratch] = []
    /// Made 0700 if missing: libvirt binds the channel socket in it.
    public var channelDir = ""
    public var shutdownTimeout: Int?
    public init() {}

    /// Every file a start makes (removed at stop).
    public var files: [String] { snapshots.map(\.file) + scratch.map(\.file) }

    public static let namespace = "urn:odyssey:vmm-libvirt:domain:2"
    public static let prefix = "odyssey"

    static let roles: [VolumeDescription.Role] = [.root, .private, .volatile, .modules]

    /// The <metadata> child that records this plan (plus label and uuid, for people reading `virsh dumpxml`).
    public func metadata(label: String, uuid: String) -> String {
        let e = XML.escape
        var x = "<\(Self.prefix):domain xmlns:\(Self.prefix)='\(e(Self.namespace))'>"
        if !label.isEmpty { x += "<label>\(e(label))</label>" }
        if !uuid.isEmpty { x += "<uuid>\(e(uuid))</uuid>" }
        if !owner.isEmpty { x += "<owner>\(e(owner))</owner>" }
        if !runDir.isEmpty { x += "<run-dir>\(e(runDir))</run-dir>" }
        for s in snapshots { x += "<snapshot><base>\(e(s.base))</base><file>\(e(s.file))</file></snapshot>" }
        for s in scratch { x += "<scratch><file>\(e(s.file))</file><size-mib>\(s.sizeMiB)</size-mib></scratch>" }
        if !channelDir.isEmpty { x += "<channel-dir>\(e(channelDir))</channel-dir>" }
        if let t = shutdownTimeout { x += "<shutdown-timeout>\(t)</shutdown-timeout>" }
        return x + "</\(Self.prefix):domain>"
    }

    /// Reads a plan back from the metadata element libvirt hands out; nil if it is not ours or malformed.
    public static func read(metadata xml: String) -> StartPlan? {
        var p = StartPlan()
        p.owner = XML.text(of: "owner", in: xml) ?? ""
        p.runDir = XML.text(of: "run-dir", in: xml) ?? ""
        p.channelDir = XML.text(of: "channel-dir", in: xml) ?? ""
        p.shutdownTimeout = XML.text(of: "shutdown-timeout", in: xml).flatMap { Int($0) }
        var rest = Substring(xml)
        while let r = rest.find("<snapshot>") {
            let body = rest[r.upperBound...]
            guard let end = body.find("</snapshot>") else { return nil }
            let item = String(body[..<end.lowerBound])
            guard let base = XML.text(of: "base", in: item), let file = XML.text(of: "file", in: item) else { return nil }
            p.snapshots.append(Snapshot(base: base, file: file))
            rest = body[end.upperBound...]
        }
        rest = Substring(xml)
        while let r = rest.find("<scratch>") {
            let body = rest[r.upperBound...]
            guard let end = body.find("</scratch>") else { return nil }
            let item = String(body[..<end.lowerBound])
            guard let file = XML.text(of: "file", in: item), let size = XML.text(of: "size-mib", in: item).flatMap({ UInt64($0) }) else { return nil }
            p.scratch.append(Scratch(file: file, sizeMiB: size))
            rest = body[end.upperBound...]
        }
        // Only absolute paths under the run directory are ever created or removed.
        for f in p.files where p.runDir.isEmpty || !f.hasPrefix(p.runDir + "/") || f.contains("/../") { return nil }
        return p
    }
}
