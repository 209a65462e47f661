// Who may connect to the channels the host serves in a domain's directory.
//
// The host listens in <socket_dir>/<domain>/, which only that domain sees
// (bind-mounted at /run/odyssey/vchan), so "the peer is in that domain" is
// given by the path. But inside the domain every process can reach the
// directory, and the first connector used to win: a domain user could take
// the stdin of `ody run --user root`, forge its output and exit status, or,
// after a daemon restart, the control channel itself. So before anything is
// sent, the connection's credentials (SO_PEERCRED, translated by the kernel
// into the host's pid and user namespaces, so the domain cannot forge them)
// must name the domain's agent:
//
//   * PID 1 of a pid namespace one level below the host's (the agent is the
//     domain's init; domain processes cannot make pid namespaces), running
//     as the uid its user namespace maps root to (the domain's root); or
//   * a process of the host itself: the host's pid namespace and the host's
//     own uid (tests and tools on the host; no domain process is ever in the
//     host's pid namespace).
//
// Anything else is closed unanswered, logged, and the listener keeps waiting
// for the real agent. Ownership and mode narrow the door further: once an
// agent of a directory has been admitted, later sockets there (the data
// channels of `ody run` and services) are created 0600 and owned by that
// agent's host uid, so the domain's other users cannot even connect. The
// uid is forgotten when the directory's last channel closes (a domain
// restarted after a re-define may run under another uid range).
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket

/// A connected peer as the kernel reported it at connect time.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public static func of(_ fd: Int32) -> PeerCredentials? {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard vs_peer_cred(fd, &pid, &uid, &gid) == 0 else { return nil }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    public var description: String { "pid \(pid), uid \(uid)" }
}

public final class AgentGate: @unchecked Sendable {
    private let lock = PLock()
    private var dirs: [String: (uid: UInt32?, live: Int)] = [:]
    private let log: @Sendable (String) -> Void
    /// Refusals are logged at most once a second per directory (a domain
    /// connecting in a loop must not fill the host's log); the rest are
    /// counted into the next line.
    private var lastLogNs: [String: Int64] = [:]
    private var unlogged: [String: Int] = [:]

    /// `log` receives one line per refused peer.
    public init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    /// A listener is about to be made in `dir`: the owner its socket gets
    /// (nil: keep root's, mode 0666; the peer check still applies).
    public func opening(_ dir: String) -> UInt32? {
        lock.locked {
            var e = dirs[dir] ?? (nil, 0)
            e.live += 1
            dirs[dir] = e
            return e.uid
        }
    }

    /// A channel of `dir` closed.
    public func closed(_ dir: String) {
        lock.locked {
            guard var e = dirs[dir] else { return }
            e.live -= 1
            dirs[dir] = e.live > 0 ? e : nil
            if e.live <= 0 { lastLogNs[dir] = nil; unlogged[dir] = nil }
        }
    }

    /// Decides on a connection to `what` (the socket path) in `dir`.
    public func admit(_ peer: PeerCredentials?, dir: String, what: String) -> Bool {
        guard let peer else {
            refused(dir, "vchan: \(what): refused a connection whose credentials could not be read")
            return false
        }
        if let why = Self.refusal(peer) {
            refused(dir, "vchan: \(what): refused \(peer): \(why); still waiting for the domain's agent")
            return false
        }
        lock.locked {
            if var e = dirs[dir], peer.uid != geteuid() { e.uid = peer.uid; dirs[dir] = e }
        }
        return true
    }

    private func refused(_ dir: String, _ line: String) {
        let now = SocketChannel.monotonicNs()
        let text: String? = lock.locked {
            if let last = lastLogNs[dir], now - last < 1_000_000_000 {
                unlogged[dir, default: 0] += 1
                return nil
            }
            lastLogNs[dir] = now
            let more = unlogged.removeValue(forKey: dir) ?? 0
            return more > 0 ? "\(line) (and \(more) more refused in the last second)" : line
        }
        if let text { log(text) }
    }

    /// nil when `peer` is the domain's agent or the host itself, else why not.
    public static func refusal(_ peer: PeerCredentials) -> String? {
        guard let mine = ownNsPids else { return "cannot read our own /proc/self/status" }
        guard let theirs = nsPids(peer.pid) else { return "it exited before it could be checked" }
        if theirs.count == mine.count {
            return peer.uid == geteuid() ? nil : "a host process of another uid"
        }
        guard theirs.count == mine.count + 1, theirs.last == 1 else {
            return "not PID 1 of its domain (pid \(theirs.last ?? -1) there), so not its agent"
        }
        guard let root = rootMapping(peer.pid), root == peer.uid else {
            return "PID 1 of its domain but not running as the domain's root"
        }
        return nil
    }

    /// Ours, read once: a process never changes pid namespace.
    static let ownNsPids = nsPids(getpid())

    /// The NSpid line of /proc/PID/status: the pid in each pid namespace from
    /// ours down to the process's own.
    static func nsPids(_ pid: Int32) -> [Int32]? {
        guard let text = readSmall("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int32($0) }
        }
        return nil
    }

    /// The host uid that root (uid 0) of PID's user namespace is.
    static func rootMapping(_ pid: Int32) -> UInt32? {
        guard let text = readSmall("/proc/\(pid)/uid_map") else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if f.count == 3, f[0] == "0" { return UInt32(f[1]) }
        }
        return nil
    }

    static func readSmall(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { Glibc.close(fd) }
        var buf = [UInt8](repeating: 0, count: 8192)
        var got = 0
        while got < buf.count {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return String(decoding: buf[0..<got], as: UTF8.self)
    }
}
