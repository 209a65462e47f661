// What is on disk under the policy directories, summed up in one value: every
// file and directory (however deep, however late it appeared) by path, inode,
// size, mode and modification time. Equal values mean the loader would read
// the same files; the watcher's backstop and `ody policy check` compare it
// with the value taken before the live policy was loaded.
//
// The walk uses a work list, not recursion (a deep tree cannot exhaust the
// stack), and stops at `maxEntries`: past that the value still changes with
// what was seen, and the policy loader itself refuses such a tree.
#if canImport(Glibc)
import Glibc
#endif

struct PolicyFingerprint: Equatable, Sendable {
    let value: Int
    /// Directories seen (the watcher adds an inotify watch on each).
    let directories: [String]

    static let maxEntries = 10_000

    static func of(_ roots: [String]) -> PolicyFingerprint {
        var hasher = Hasher()
        var dirs: [String] = []
        var pending = roots
        var seen = 0
        while let path = pending.popLast(), seen < maxEntries {
            seen += 1
            var st = stat()
            hasher.combine(path)
            guard stat(path, &st) == 0 else { hasher.combine(-1); continue }   // missing: part of the value too
            hasher.combine(st.st_ino); hasher.combine(st.st_size); hasher.combine(st.st_mode)
            hasher.combine(st.st_mtim.tv_sec); hasher.combine(st.st_mtim.tv_nsec)
            hasher.combine(st.st_ctim.tv_sec); hasher.combine(st.st_ctim.tv_nsec)
            guard st.st_mode & S_IFMT == S_IFDIR else { continue }
            dirs.append(path)
            pending += entries(of: path).sorted().map { path + "/" + $0 }
        }
        return PolicyFingerprint(value: hasher.finalize(), directories: dirs)
    }

    private static func entries(of dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}
