// rm -rf of a tree a domain wrote (its run_dir: the overlay upper layer holds
// whatever the domain made under /), done without recursion.
//
// Why not the obvious recursive walk: the domain chooses the depth. A few
// hundred nested directories made in /var/tmp were enough to overflow the
// thread stack of the host (SIGSEGV at shutdown, and again at every start
// while recovery tried the same removal). Keeping a stack of open
// directories on the heap instead would cost one descriptor per level.
//
// So the tree is flattened on the disk itself: while a directory D directly
// under the root is emptied, each subdirectory of D is renamed up into the
// root (a rename within one file system is O(1) and moves the whole
// subtree), D's other entries are unlinked, and D is removed. Passes over
// the root repeat until it is empty; a chain of N levels takes at most N+1
// passes. Memory and descriptors stay constant (the root, one directory,
// one readdir buffer) whatever the depth or width.
//
// Symlinks are never followed (unlinkat removes the link itself, every open
// is O_NOFOLLOW) and nothing on another device is entered: a mount point
// fails the removal with EBUSY instead of being emptied.
import Glibc

enum TreeRemoval {
    /// Removes `path` and everything under it; a missing path is not an error.
    static func remove(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw NativeError.sys("lstat \(path)")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            try Sys.check("unlink \(path)") { unlink(path) }
            return
        }
        let root = try Sys.check("open \(path)") { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        defer { close(root) }
        try empty(root, path, device: st.st_dev)
        try Sys.check("rmdir \(path)") { rmdir(path) }
    }

    /// Empties the directory `root` (see the file comment for how).
    static func empty(_ root: Int32, _ path: String, device: UInt) throws {
        var counter = 0
        while true {
            var sawEntry = false
            var progress = false
            try forEachEntry(root, path) { name in
                sawEntry = true
                guard let isDir = try entryIsDirectory(root, path, name, device: device) else { return }
                if !isDir {
                    try Sys.check("unlink \(path)/\(name)") { unlinkat(root, name, 0) }
                    progress = true
                    return
                }
                if try flattenOneLevel(root, path, name, device: device, counter: &counter) { progress = true }
                // ENOTEMPTY: something in it could not be moved this time;
                // the next pass tries again.
                if unlinkat(root, name, AT_REMOVEDIR) == 0 {
                    progress = true
                } else if errno != ENOTEMPTY && errno != ENOENT {
                    throw NativeError.sys("rmdir \(path)/\(name)")
                }
            }
            if !sawEntry { return }
            // A pass that changed nothing would repeat forever: fail instead.
            if !progress { throw NativeError.sys("remove \(path): entries that cannot be removed", ENOTEMPTY) }
        }
    }

    /// Unlinks the non-directories in `root/name` and renames its
    /// subdirectories up into `root` under fresh names; true if anything
    /// was removed or moved.
    private static func flattenOneLevel(_ root: Int32, _ path: String, _ name: String, device: UInt,
                                        counter: inout Int) throws -> Bool {
        let sub = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if sub < 0 {
            if errno == ENOENT { return false }
            throw NativeError.sys("open \(path)/\(name)")
        }
        defer { close(sub) }
        let subPath = "\(path)/\(name)"
        var changed = false
        try forEachEntry(sub, subPath) { child in
            guard let isDir = try entryIsDirectory(sub, subPath, child, device: device) else { return }
            if !isDir {
                try Sys.check("unlink \(subPath)/\(child)") { unlinkat(sub, child, 0) }
                changed = true
                return
            }
            // A fresh name in the root. renameat onto an existing non-empty
            // directory fails (ENOTEMPTY/EEXIST), onto a file ENOTDIR: then
            // the next number is tried. (Replacing an existing *empty*
            // directory is harmless: it was to be removed anyway.)
            while true {
                counter += 1
                let target = ".odyssey-rm-\(counter)"
                if renameat(sub, child, root, target) == 0 { changed = true; return }
                let e = errno
                if e == EEXIST || e == ENOTEMPTY || e == ENOTDIR || e == EISDIR { continue }
                if e == ENOENT { return }
                throw NativeError.sys("rename \(subPath)/\(child) to \(path)/\(target)", e)
            }
        }
        return changed
    }

    /// true: a directory on `device`; false: anything else (removed with
    /// unlink); nil: gone meanwhile. A directory on another device is a
    /// mount point: EBUSY.
    private static func entryIsDirectory(_ dirfd: Int32, _ path: String, _ name: String, device: UInt) throws -> Bool? {
        var st = stat()
        if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            if errno == ENOENT { return nil }
            throw NativeError.sys("stat \(path)/\(name)")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return false }
        if st.st_dev != device { throw NativeError.sys("remove \(path)/\(name) (a mount point)", EBUSY) }
        return true
    }

    /// Streams the names in `dirfd` (without "." and "..") through `body`.
    private static func forEachEntry(_ dirfd: Int32, _ path: String, _ body: (String) throws -> Void) throws {
        let dup = try Sys.check("dup \(path)") { fcntl(dirfd, F_DUPFD_CLOEXEC, 0) }
        guard let dir = fdopendir(dup) else { close(dup); throw NativeError.sys("fdopendir \(path)") }
        defer { closedir(dir) }
        // A directory fd shares its offset with its dup: start from the top.
        rewinddir(dir)
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            try body(name)
        }
    }
}
