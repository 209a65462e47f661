// Where socket vchans live on disk, shared by the host plugin and the agent.
//
//   host:    <socket_dir>/<X>/vchan.<server>.<client>.<port>.sock
//   domain X sees <socket_dir>/<X> bind-mounted at /run/odyssey/vchan
//            ($VCHAN_SOCKET_DIR), so inside X the same file is
//            /run/odyssey/vchan/vchan.<server>.<client>.<port>.sock
//
// Rule: when the local end is the admin domain (dom0), the channel file lives
// in the *remote* domain's directory; otherwise (inside a domain, whose
// socket dir is already its own) it lives in the base directory itself.
// See the plugin's Entry.swift for why this gives "a domain reaches only the
// channels made for it" and "the host knows the peer without asking it".

public enum ChannelLayout {
    /// The admin domain's name on the wire (Qubes: dom0, domid 0).
    public static let adminDomain = "dom0"
    /// Default socket directory (host: the base of the per-domain dirs;
    /// inside a domain: its own bind-mounted dir). $VCHAN_SOCKET_DIR overrides it in the agent.
    public static let defaultDirectory = "/run/odyssey/vchan"
    /// sockaddr_un.sun_path holds 108 bytes including the NUL.
    public static let maxPath = 107

    /// Qubes domain names: `[A-Za-z][A-Za-z0-9_.-]*`, at most 31 bytes. They
    /// become path components, so nothing else ever passes ('/', "..", NUL).
    public static func isValidDomainName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard let first = b.first, b.count <= 31 else { return false }
        func alpha(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        guard alpha(first) else { return false }
        return b.allSatisfy { alpha($0) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    public static func isValidPort(_ port: UInt32) -> Bool { port > 0 && port <= 65535 }

    public static func fileName(server: String, client: String, port: UInt32) -> String {
        "vchan.\(server).\(client).\(port).sock"
    }

    /// The directory holding channels between `local` and `remote`, seen from `local`.
    public static func directory(base: String, local: String, remote: String) -> String {
        local == adminDomain ? join(base, remote) : base
    }

    /// Path of the socket `local` listens on for `remote`.
    public static func serverPath(base: String, local: String, remote: String, port: UInt32) -> String {
        join(directory(base: base, local: local, remote: remote), fileName(server: local, client: remote, port: port))
    }

    /// Path `local` connects to for a channel `remote` serves.
    public static func clientPath(base: String, local: String, remote: String, port: UInt32) -> String {
        join(directory(base: base, local: local, remote: remote), fileName(server: remote, client: local, port: port))
    }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }
}
