// The provider-neutral description (ABI 1.2) as a Xen PV guest: the guest
// kit's kernel and initrd, the boot contract's command line (docs/guest-kit.md,
// the Xen half), and the disks in Qubes' Xen order (xvda root, xvdb private,
// xvdc volatile, xvdd modules), then one read-only ext4 image per share (no
// 9p under Xen), labelled with the share's tag, from xvde on.
//
// The layout is worked out once, at define, and kept in the definition as
// params of our own (`disk.xvdX`, `run_dir`, `kernel`, `ramdisk`, `cmdline`),
// so a restarted odysseyd starts the domain from its definitions file alone.
// Nothing here touches a file: XenRunFiles makes what a start needs.
import PluginKit

struct XenGuestLayout {
    /// One disk of a start, and how its backing file comes to be.
    enum DiskSource: Equatable {
        /// An image used as it is (private: read-write; modules: read-only).
        case image(path: String, readOnly: Bool)
        /// A per-start copy of a base image in the run directory (root's copy-on-write layer).
        case snapshot(base: String)
        /// A fresh sparse file of this size in the run directory (volatile: swap).
        case scratch(sizeMiB: UInt64)
        /// A read-only ext4 image built from a host directory, labelled with the tag.
        case share(tag: String, hostPath: String)
    }

    struct Disk: Equatable {
        var vdev: String
        var source: DiskSource
    }

    var kernel = ""
    var ramdisk = ""
    var cmdline = ""
    var runDir = ""
    var disks: [Disk] = []

    /// Qubes' Xen convention for the four volume roles.
    static func vdev(_ role: VolumeDescription.Role) -> String {
        switch role {
        case .root: "xvda"
        case .private: "xvdb"
        case .volatile: "xvdc"
        case .modules: "xvdd"
        }
    }

    /// Shares take xvde, xvdf, ...: at most 22 (xvdz), far above the 3 a domain gets.
    static let firstShareLetter = UInt8(ascii: "e")

    struct Refusal: Error { let message: String; init(_ m: String) { message = m } }

    static func make(domain: String, _ d: DomainDescription) -> Result<XenGuestLayout, Refusal> {
        var l = XenGuestLayout()
        guard d.kernel.hasPrefix("/") else {
            return .failure(.init("no guest kernel: a Xen PV domain boots the guest kit's kernel and initrd; run scripts/guest-kit "
                + "(it fills /var/lib/odyssey/vm-kernels) or set the domain's kernel property"))
        }
        l.kernel = d.kernel
        l.ramdisk = d.initrd
        l.runDir = d.runDir
        for v in d.volumes.sorted(by: { $0.role.rawValue < $1.role.rawValue }) {
            let role = "\(v.role)"
            let source: DiskSource
            switch v.form {
            case .tree:
                return .failure(.init("volume \(role) is a directory tree (\(v.path)); Xen attaches disk images (the host sends IMAGE volumes to a BLOCK_VOLUMES provider)"))
            case .image:
                if v.snapshot {
                    guard d.runDir.hasPrefix("/") else { return .failure(.init("volume \(role) is a snapshot but the domain has no run_dir for its copy-on-write layer")) }
                    source = .snapshot(base: v.path)
                } else {
                    source = .image(path: v.path, readOnly: v.readOnly)
                }
            case .none:
                guard d.runDir.hasPrefix("/") else { return .failure(.init("volume \(role) is made per start but the domain has no run_dir")) }
                source = .scratch(sizeMiB: v.sizeMiB > 0 ? v.sizeMiB : 1024)
            }
            l.disks.append(Disk(vdev: vdev(v.role), source: source))
        }
        guard l.disks.first?.vdev == "xvda" else { return .failure(.init("the description has no root volume")) }
        var letter = firstShareLetter
        for s in d.shares {
            guard s.readOnly else {
                return .failure(.init("share \(s.tag) is writable: under Xen a share is a read-only disk image built from \(s.hostPath) (there is no 9p)"))
            }
            guard letter <= UInt8(ascii: "z") else { return .failure(.init("too many shares (xvde...xvdz)")) }
            l.disks.append(Disk(vdev: "xvd" + String(Unicode.Scalar(letter)), source: .share(tag: s.tag, hostPath: s.hostPath)))
            letter += 1
        }
        if let ch = d.channel, ch.kind != .xen {
            return .failure(.init("channel kind \(ch.kind) cannot be wired into a Xen domain (it takes the xen vchan)"))
        }
        switch commandLine(domain: domain, d) {
        case .success(let c): l.cmdline = c
        case .failure(let f): return .failure(f)
        }
        return .success(l)
    }

    /// The boot contract's words for a Xen guest (PluginKit's BootCommandLine):
    /// `odyssey.vchan=xen` tells the init to find its disks by xvd name and
    /// its shares by disk label; the console is Xen's (hvc0). (Writable
    /// shares are refused before this: every share here is read-only.)
    static func commandLine(domain: String, _ d: DomainDescription) -> Result<String, Refusal> {
        BootCommandLine.build(domain: domain, d, vchan: "xen", console: "hvc0").mapError { Refusal($0.message) }
    }

    // MARK: kept in the definition

    /// The layout as definition params (values are percent-encoded by the store).
    var params: [String: String] {
        var p = ["kernel": kernel, "cmdline": cmdline, "run_dir": runDir, "described": "1"]
        if !ramdisk.isEmpty { p["ramdisk"] = ramdisk }
        for disk in disks {
            p["disk." + disk.vdev] = switch disk.source {
            case .image(let path, let ro): (ro ? "image-ro:" : "image-rw:") + path
            case .snapshot(let base): "snapshot:" + base
            case .scratch(let size): "scratch:\(size)"
            case .share(let tag, let host): "share:\(tag):\(host)"
            }
        }
        return p
    }

    /// The disks back from a definition's params (nil: a param is malformed,
    /// i.e. the definitions file was edited by hand).
    static func disks(from params: [String: String]) -> [Disk]? {
        var out: [Disk] = []
        for (k, v) in params where k.hasPrefix("disk.") {
            let vdev = String(k.dropFirst(5))
            guard vdev.count == 4, vdev.hasPrefix("xvd"), let c = vdev.utf8.last, c >= 0x61, c <= 0x7a else { return nil }
            let source: DiskSource
            if v.hasPrefix("image-ro:") { source = .image(path: String(v.dropFirst(9)), readOnly: true) }
            else if v.hasPrefix("image-rw:") { source = .image(path: String(v.dropFirst(9)), readOnly: false) }
            else if v.hasPrefix("snapshot:") { source = .snapshot(base: String(v.dropFirst(9))) }
            else if v.hasPrefix("scratch:"), let n = UInt64(v.dropFirst(8)), n > 0 { source = .scratch(sizeMiB: n) }
            else if v.hasPrefix("share:") {
                let rest = v.dropFirst(6)
                guard let colon = rest.firstIndex(of: ":") else { return nil }
                source = .share(tag: String(rest[..<colon]), hostPath: String(rest[rest.index(after: colon)...]))
            } else { return nil }
            out.append(Disk(vdev: vdev, source: source))
        }
        return out.sorted { $0.vdev < $1.vdev }
    }

    /// Params only this plugin writes; an admin's params of these names are dropped at define.
    static func isOwnParam(_ key: String) -> Bool { key.hasPrefix("disk.") || key == "run_dir" || key == "described" }
}
