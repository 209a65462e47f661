// How native makes what the host describes (ABI 1.2): the description
// becomes native's own definition params (what a 1.1 host sent directly),
// so a definition persists and reloads exactly as before.
//
//   root volume (tree)       root_dir; snapshot -> an overlay with a tmpfs upper
//   private volume (tree)    private_dir, seen at /rw (and /home = /rw/home)
//   volatile (none)          volatile_mib, the tmpfs behind the snapshot
//   shares                   bind_ro.N / bind_rw.N HOST:GUEST
//   the agent                init + --domain NAME; its file also bound on its
//                            own, so ExecOnlyInit can shield it
//   channel (socket dir)     bind_rw of the directory at /run/odyssey/vchan
//   agent_env                env.KEY
import PluginABI
import PluginKit

enum DescriptionParams {
    static let vchanDirInDomain = "/run/odyssey/vchan"

    static func params(_ d: DomainDescription, name: String) throws -> [String: String] {
        func refuse(_ why: String) -> NativeError { NativeError(ODY_E_UNSUPPORTED, "native: define \(name): \(why)") }
        var p: [String: String] = ["hostname": name]
        guard let root = d.volume(.root) else { throw NativeError(ODY_E_INVALID, "native: define \(name): no root volume") }
        guard root.form == .tree else { throw refuse("the root volume must be a directory tree (native has no block devices)") }
        p["root_dir"] = root.path
        p["root_mode"] = root.snapshot ? "snapshot" : "persistent"
        if let v = d.volume(.private) {
            guard v.form == .tree, !v.snapshot else { throw refuse("the private volume must be a directory tree the domain writes") }
            p["private_dir"] = v.path
        }
        if let v = d.volume(.volatile), v.sizeMiB > 0 { p["volatile_mib"] = String(v.sizeMiB) }
        // A modules volume is for a guest kernel: native shares the host's.
        if !d.runDir.isEmpty { p["run_dir"] = d.runDir }
        guard d.agentPath.hasPrefix("/") else { throw NativeError(ODY_E_INVALID, "native: define \(name): no agent path") }
        p["init"] = d.agentPath
        p["arg0"] = "--domain"
        p["arg1"] = name
        var ro = 0, rw = 0
        for s in d.shares {
            if s.readOnly { p["bind_ro.\(ro)"] = "\(s.hostPath):\(s.guestPath)"; ro += 1 } else { p["bind_rw.\(rw)"] = "\(s.hostPath):\(s.guestPath)"; rw += 1 }
        }
        if let s = d.shares.first(where: { d.agentPath.hasPrefix($0.guestPath + "/") }) {
            p["bind_ro.\(ro)"] = s.hostPath + d.agentPath.dropFirst(s.guestPath.count) + ":" + d.agentPath
            ro += 1
        }
        guard let ch = d.channel else { throw NativeError(ODY_E_INVALID, "native: define \(name): no agent channel") }
        guard ch.kind == .socketDir, ch.path.hasPrefix("/") else { throw refuse("native wires only a socket-directory channel") }
        p["bind_rw.\(rw)"] = "\(ch.path):\(vchanDirInDomain)"
        p["env.VCHAN_SOCKET_DIR"] = vchanDirInDomain
        for e in d.agentEnv {
            guard let eq = e.firstIndex(of: "=") else { continue }
            p["env." + e[..<eq]] = String(e[e.index(after: eq)...])
        }
        return p
    }
}
