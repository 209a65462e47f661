// The few file-system operations the volume layer needs, on Glibc directly
// (no Foundation in odysseyd). Every failure names the call and the path.
#if canImport(Glibc)
import Glibc
#endif

public enum FileOps {
    static func fail(_ what: String, _ path: String, _ code: Int32 = errno) -> DomainError {
        .storage("\(what) \(path): \(String(cString: strerror(code)))")
    }

    /// lstat; nil if the path does not exist.
    static func lstatOf(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    public static func exists(_ path: String) -> Bool { lstatOf(path) != nil }

    public static func isDirectory(_ path: String) -> Bool {
        guard let st = lstatOf(path) else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p with `mode` for the directories it creates.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(DomainError) {
        if isDirectory(path) { return }
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var cur = path.hasPrefix("/") ? "" : "."
        while !parts.isEmpty {
            cur += "/" + parts.removeFirst()
            if mkdir(cur, mode) != 0, errno != EEXIST { throw fail("mkdir", cur) }
        }
    }

    public static func rename(_ from: String, _ to: String) throws(DomainError) {
        guard Glibc.rename(from, to) == 0 else { throw fail("rename \(from) to", to) }
    }

    /// fsync a directory so a rename or create inside it is durable.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Writes a whole file (truncating), with `mode`; fsyncs it.
    public static func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws(DomainError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw fail("create", path) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw fail("write", path) }
            off += n
        }
        bytes.removeAll()
        _ = fchmod(fd, mode)      // umask must not change what we asked for
        _ = fsync(fd)
    }

    public static func readFile(_ path: String, limit: Int = 1 << 24) throws(DomainError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw fail("read", path) }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > limit { throw .storage("\(path): larger than \(limit) bytes") }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Entry names of a directory (without . and ..), sorted.
    public static func list(_ path: String) throws(DomainError) -> [String] {
        guard let d = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let n = entryName(e)
            if n != "." && n != ".." { names.append(n) }
        }
        return names.sorted()
    }

    static func entryName(_ e: UnsafeMutablePointer<dirent>) -> String {
        withUnsafePointer(to: &e.pointee.d_name) { p in
            p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
    }

    /// Mount points at or below `path` in this process's mount namespace.
    public static func mountPoints(under path: String) -> [String] {
        guard let text = try? readFile("/proc/self/mountinfo") else { return [] }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        var out: [String] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 4 else { continue }
            let mp = unescapeMountinfo(String(f[4]))
            if mp == path || mp.hasPrefix(prefix) { out.append(mp) }
        }
        return out
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescapeMountinfo(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == 92, i + 3 < u.count,
               let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// rm -rf that never leaves the file system it starts on: it refuses if
    /// anything is mounted below `path` (a leftover overlay or bind mount of a
    /// crashed domain must be unmounted by its provider first; deleting through
    /// it would destroy the private volume or the template).
    public static func removeTree(_ path: String) throws(DomainError) {
        guard let st = lstatOf(path) else { return }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            guard unlink(path) == 0 || errno == ENOENT else { throw fail("unlink", path) }
            return
        }
        let mounts = mountPoints(under: path)
        guard mounts.isEmpty else {
            throw .storage("refusing to remove \(path): still mounted at \(mounts.joined(separator: ", "))")
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        try TreeRemoval.emptyDirectory(fd, path: path, device: st.st_dev)   // closes fd
        guard rmdir(path) == 0 || errno == ENOENT else { throw fail("rmdir", path) }
    }

    /// Empties a directory (a mounted volume's root) and keeps it; refuses
    /// if another file system is mounted below it.
    public static func emptyDirectory(_ path: String) throws(DomainError) {
        guard let st = lstatOf(path), (st.st_mode & S_IFMT) == S_IFDIR else { throw .storage("\(path): not a directory") }
        let mounts = mountPoints(under: path).filter { $0 != path }
        guard mounts.isEmpty else {
            throw .storage("refusing to empty \(path): still mounted at \(mounts.joined(separator: ", "))")
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        try TreeRemoval.emptyDirectory(fd, path: path, device: st.st_dev)   // closes fd
    }

    /// Total bytes allocated below `path` (du-like, hard links counted once
    /// per walk). Iterative (the tree may be a domain's, any depth); entries
    /// whose path exceeds PATH_MAX are not reached, so a deep tree is undercounted.
    public static func diskUsage(_ path: String) -> Int64 {
        var seen = Set<UInt64>()
        var pending = [path]
        var total: Int64 = 0
        while let p = pending.popLast() {
            guard let st = lstatOf(p) else { continue }
            if st.st_nlink > 1, (st.st_mode & S_IFMT) != S_IFDIR {
                guard seen.insert(UInt64(st.st_ino)).inserted else { continue }
            }
            total += Int64(st.st_blocks) * 512
            if (st.st_mode & S_IFMT) == S_IFDIR, let names = try? list(p) {
                pending += names.map { "\(p)/\($0)" }
            }
        }
        return total
    }

    /// A full copy preserving owners, modes, times, links and xattrs, sharing
    /// extents where the file system can (`cp -a --reflink=auto`).
    public static func copyTree(_ from: String, to: String) throws(DomainError) {
        try Spawn.run(["cp", "-a", "--reflink=auto", "--", from, to])
    }
}
