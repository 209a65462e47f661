#if canImport(Glibc)
import Glibc
#endif
import VchanSocketCore
// Users from the domain's own /etc/passwd and /etc/group (not NSS: the agent
// is linked statically and must not load NSS modules from the domain).

struct UserEntry: Equatable {
    var name: String
    var uid: UInt32
    var gid: UInt32
    var home: String
    var shell: String
    var groups: [UInt32]
}

enum Users {
    /// The last answers, valid while both files are unchanged (same inode,
    /// size and mtime): every command looks its user up, and reading and
    /// splitting two files is a measurable part of a command's start in a
    /// TCG guest; two stat calls are not.
    private struct Cached { let passwd: FileStamp; let group: FileStamp; let entry: UserEntry? }
    private struct FileStamp: Equatable {
        let ino: UInt64, size: Int64, sec: Int, nsec: Int
        init?(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            ino = UInt64(st.st_ino); size = Int64(st.st_size); sec = st.st_mtim.tv_sec; nsec = st.st_mtim.tv_nsec
        }
    }
    nonisolated(unsafe) private static var cache: [String: Cached] = [:]
    private static let cacheLock = PLock()

    /// `lookup` of the agent's own root, answered from the cache while
    /// /etc/passwd and /etc/group are unchanged.
    static func lookup(_ name: String) -> UserEntry? {
        guard let p = FileStamp("/etc/passwd"), let g = FileStamp("/etc/group") else { return lookup(name, root: "") }
        if let c = cacheLock.locked({ cache[name] }), c.passwd == p, c.group == g { return c.entry }
        // Stamped before reading: a change while we read makes the next
        // stamp differ, and that call reads again.
        let entry = lookup(name, root: "")
        cacheLock.locked {
            if cache.count >= 64 { cache = [:] }
            cache[name] = Cached(passwd: p, group: g, entry: entry)
        }
        return entry
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > 16 << 20 { return nil }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Looks `name` up in `<root>/etc/passwd`, with its groups from `<root>/etc/group`.
    static func lookup(_ name: String, root: String) -> UserEntry? {
        guard let passwd = readFile(root + "/etc/passwd") else { return nil }
        var found: UserEntry?
        for line in passwd.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 7, f[0] == name, let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { continue }
            found = UserEntry(name: name, uid: uid, gid: gid, home: f[5].isEmpty ? "/" : String(f[5]),
                              shell: f[6].isEmpty ? "/bin/sh" : String(f[6]), groups: [gid])
            break
        }
        guard var u = found else { return nil }
        if let group = readFile(root + "/etc/group") {
            for line in group.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                guard f.count >= 4, let gid = UInt32(f[2]) else { continue }
                if f[3].split(separator: ",").contains(where: { $0 == name }) && !u.groups.contains(gid) { u.groups.append(gid) }
            }
        }
        return u
    }
}
