// Empties a directory tree that a domain may have shaped (a disposable's home,
// a root's overlay upper, a private volume), whatever its depth or names.
//
// Why not recursion: a domain can nest directories 100,000 levels deep with
// relative mkdirs; one stack frame per level overflowed the daemon's thread
// stack (SIGSEGV, also in release builds, and again at every start during
// recovery). Why not one fd per level: that is bounded by RLIMIT_NOFILE,
// which a deep enough tree exceeds too.
//
// So: one directory fd open at a time (plus one transiently), and a stack in
// heap memory of the levels below the top: each level's name (raw bytes: a
// domain may use names that are not UTF-8) and its dev/ino. Going down is
// openat(name, O_NOFOLLOW); going up is openat(".."), accepted only if its
// dev/ino is the one recorded for the parent (a tree moved under us is
// refused, never followed). Never follows a symlink, never leaves the device
// it started on. Memory is the current path's names: proportional to depth,
// which the volume's size bounds.
//
// Cost: a directory is re-read from its start each time the walk comes back
// up into it; entries already removed are gone, and empty subdirectories are
// removed in the same pass without descending, so only a directory with many
// non-empty subdirectories is re-read more than a few times.
#if canImport(Glibc)
import Glibc
#endif

enum TreeRemoval {
    /// One directory below the top: its name in its parent and its identity.
    private struct Level {
        let name: [CChar]       // NUL-terminated
        let dev: UInt64
        let ino: UInt64
    }

    /// Empties the directory open at `topFd` (consumed), known as `path`,
    /// on `device`. Throws on the first entry it cannot remove.
    static func emptyDirectory(_ topFd: Int32, path: String, device: dev_t) throws(DomainError) {
        var top = stat()
        guard fstat(topFd, &top) == 0 else { let e = errno; close(topFd); throw FileOps.fail("fstat", path, e) }
        var cur = topFd
        defer { close(cur) }
        var below: [Level] = []
        while true {
            if let name = try removeEntries(cur, below: below, path: path) {
                let sub = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard sub >= 0 else {
                    if errno == ENOENT { continue }
                    throw FileOps.fail("open", where_(path, below, name))
                }
                var st = stat()
                guard fstat(sub, &st) == 0, st.st_dev == device else {
                    close(sub)
                    throw .storage("refusing to remove \(where_(path, below, name)): another file system is mounted there")
                }
                // A directory without write permission (a template's read-only dir) must still be emptied.
                if (st.st_mode & 0o200) == 0 { _ = fchmod(sub, st.st_mode | 0o700) }
                below.append(Level(name: name, dev: UInt64(st.st_dev), ino: UInt64(st.st_ino)))
                close(cur)
                cur = sub
                continue
            }
            // `cur` is empty: go up and remove it.
            guard let done = below.popLast() else { return }
            let parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard parent >= 0 else { throw FileOps.fail("open", where_(path, below, done.name) + "/..") }
            var pst = stat()
            let expected = below.last.map { ($0.dev, $0.ino) } ?? (UInt64(top.st_dev), UInt64(top.st_ino))
            guard fstat(parent, &pst) == 0, (UInt64(pst.st_dev), UInt64(pst.st_ino)) == expected else {
                close(parent)
                throw .storage("refusing to remove \(where_(path, below, done.name)): the tree was moved while being removed")
            }
            close(cur)
            cur = parent
            if unlinkat(cur, done.name, AT_REMOVEDIR) != 0, errno != ENOENT {
                throw FileOps.fail("rmdir", where_(path, below, done.name))
            }
        }
    }

    /// One pass over the directory at `dir`: unlinks every non-directory and
    /// every empty subdirectory. Returns the name of the first subdirectory
    /// that is not empty (to descend into), or nil when `dir` is now empty.
    private static func removeEntries(_ dir: Int32, below: [Level], path: String) throws(DomainError) -> [CChar]? {
        // A new open file description: a dup would share (and keep) the read offset.
        let fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileOps.fail("open", where_(path, below, nil)) }
        guard let d = fdopendir(fd) else { let e = errno; close(fd); throw FileOps.fail("fdopendir", where_(path, below, nil), e) }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = rawName(e)
            if isDotOrDotDot(name) { continue }
            var isDir = e.pointee.d_type == UInt8(DT_DIR)
            if e.pointee.d_type == UInt8(DT_UNKNOWN) {
                var st = stat()
                if fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { isDir = (st.st_mode & S_IFMT) == S_IFDIR }
            }
            if !isDir {
                if unlinkat(dir, name, 0) != 0, errno != ENOENT { throw FileOps.fail("unlink", where_(path, below, name)) }
                continue
            }
            if unlinkat(dir, name, AT_REMOVEDIR) == 0 || errno == ENOENT { continue }
            if errno == ENOTEMPTY || errno == EEXIST { return name }
            // EBUSY: a mount point; anything else: report it.
            throw FileOps.fail("rmdir", where_(path, below, name))
        }
        return nil
    }

    private static func rawName(_ e: UnsafeMutablePointer<dirent>) -> [CChar] {
        withUnsafePointer(to: &e.pointee.d_name) { p in
            p.withMemoryRebound(to: CChar.self, capacity: 256) { c in
                Array(UnsafeBufferPointer(start: c, count: strlen(c) + 1))
            }
        }
    }

    private static func isDotOrDotDot(_ n: [CChar]) -> Bool {
        (n.count == 2 && n[0] == 0x2e) || (n.count == 3 && n[0] == 0x2e && n[1] == 0x2e)
    }

    /// A readable location for errors: the top path, the depth, the last name
    /// (the full path of a deep entry would be longer than any log line).
    private static func where_(_ path: String, _ below: [Level], _ name: [CChar]?) -> String {
        let leaf = name.map { String(decoding: $0.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        switch (below.count, leaf) {
        case (0, nil): return path
        case (0, let l?): return "\(path)/\(l)"
        case (let n, nil): return "\(path)/<\(n) levels down>"
        case (let n, let l?): return "\(path)/<\(n) levels down>/\(l)"
        }
    }
}
