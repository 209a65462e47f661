// A private volume holds the guest's own ids on disk (0..65535: root is 0,
// `user` is 1000), whichever provider ran the domain last: a VM writes them
// that way, and vmm-native maps them into the domain's uid range with an
// idmapped mount (the jailer's capture_private). Volumes written before that
// convention hold uid_base+k on disk; this shifts such a volume once, at its
// next native start, to k.
//
// Why here, in the plugin's Swift, and not in the jailer: nothing in the
// walk has to run between fork and exec (so it need not be C), the plugin's
// start already runs on the caller's thread and does this kind of host-side
// preparation (the run dir's removal), and only here can the ids it leaves
// alone be reported to the host's log. It runs before the jailer is spawned:
// nothing else uses the tree during the start.
//
// How the old convention is recognised: the jailer used to (re)own the
// volume's top directory to the domain's root, uid_base, at every start, so
// a top directory owned by an id >= 65536 marks an unshifted volume, and
// that id is the base it was written under (normally this domain's; a
// disposable's snapshot copied from its template's old volume carries the
// template's). The top directory is shifted last, so a walk cut short (the
// host killed) is simply redone: entries already shifted are below 65536 and
// are left as they are.
//
// The tree is the domain's data, so the walk trusts nothing in it: symlinks
// are never followed (fchownat AT_SYMLINK_NOFOLLOW re-owns the link itself),
// nothing on another device is entered, no recursion (the domain chooses the
// depth: TreeRemoval says what that did to a recursive walk), one directory
// descriptor open at a time (the walk climbs back with "..", checked against
// the inode it left), and a bound on the entries visited.
import Glibc
import PluginABI

enum PrivateOwnership {
    /// Ids a domain sees: the guest's own range, 0..<guestIds, on disk.
    static let guestIds: UInt32 = 65536
    /// More entries than any private volume holds (a 2 GiB ext4 image has
    /// 131,072 inodes): a bound on the walk's time and memory.
    static let maxEntries = 8 * 1024 * 1024

    struct Outcome: Equatable {
        /// The base the volume was written under (nil: already guest ids).
        var base: UInt32?
        var shifted = 0
        /// Entries with an id >= 65536 outside base..<base+count, left as they are.
        var foreign = 0
        var firstForeign = ""
    }

    /// Shifts `dir` to guest ids if it was written under the old convention.
    /// `count` is the domain's uid_count. A missing directory is not an error
    /// (the jailer creates it).
    static func shiftIfNeeded(_ dir: String, count: UInt32) throws -> Outcome {
        var top = stat()
        if lstat(dir, &top) != 0 {
            if errno == ENOENT { return Outcome() }
            throw NativeError.sys("lstat private_dir \(dir)")
        }
        // Not a directory: the jailer refuses it with its own message.
        guard (top.st_mode & S_IFMT) == S_IFDIR, top.st_uid >= guestIds else { return Outcome() }
        // The range never reaches down to the ids it produces, so an entry
        // seen twice (a hard link) or a walk redone is never shifted twice.
        let gidBase = top.st_gid >= guestIds ? top.st_gid : top.st_uid
        let shift = Shift(uidBase: top.st_uid, gidBase: gidBase, count: min(count, top.st_uid, gidBase))
        var out = Outcome(base: top.st_uid)
        let root = try Sys.check("open private_dir \(dir)") { open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        var cur = root
        defer { close(cur) }
        try walk(&cur, dir, device: top.st_dev, rootInode: top.st_ino, shift: shift, out: &out)
        // The top last: until it is done, the next start walks again.
        try reown(cur, "", top, shift, path: dir, out: &out)
        return out
    }

    private struct Shift {
        var uidBase: UInt32, gidBase: UInt32, count: UInt32
        /// The guest id for `id`, or nil for an id left as it is (a guest id
        /// already, or a foreign one).
        func uid(_ id: UInt32) -> UInt32? { id >= uidBase && id - uidBase < count ? id - uidBase : nil }
        func gid(_ id: UInt32) -> UInt32? { id >= gidBase && id - gidBase < count ? id - gidBase : nil }
    }

    /// A directory being walked: its subdirectories still to enter, and its
    /// identity, to check the climb back with "..".
    private struct Frame {
        var subdirectories: [String]
        var next = 0
        var inode: UInt
        var path: String
    }

    private static func walk(_ cur: inout Int32, _ dir: String, device: UInt, rootInode: UInt,
                             shift: Shift, out: inout Outcome) throws {
        var visited = 0
        var stack = [Frame(subdirectories: try reownEntries(cur, dir, device: device, shift: shift, out: &out, visited: &visited),
                           inode: rootInode, path: dir)]
        while !stack.isEmpty {
            let i = stack.count - 1
            guard stack[i].next < stack[i].subdirectories.count else {
                stack.removeLast()
                guard let parent = stack.last else { return }
                try move(&cur, to: "..", expecting: parent.inode, device: device, path: parent.path)
                continue
            }
            let name = stack[i].subdirectories[stack[i].next]
            stack[i].next += 1
            var st = stat()
            guard fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw NativeError.sys("private volume \(stack[i].path)/\(name) changed during the ownership shift", EBUSY)
            }
            let path = "\(stack[i].path)/\(name)"
            try move(&cur, to: name, expecting: st.st_ino, device: device, path: path)
            let subs = try reownEntries(cur, path, device: device, shift: shift, out: &out, visited: &visited)
            stack.append(Frame(subdirectories: subs, inode: st.st_ino, path: path))
        }
    }

    /// Replaces `cur` with the directory `name` in it, refusing anything but
    /// the expected directory (never a symlink, never another device).
    private static func move(_ cur: inout Int32, to name: String, expecting inode: UInt, device: UInt, path: String) throws {
        let next = try Sys.check("open \(path)") { openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        var st = stat()
        guard fstat(next, &st) == 0, st.st_ino == inode, st.st_dev == device else {
            close(next)
            throw NativeError.sys("private volume \(path) changed during the ownership shift", EBUSY)
        }
        close(cur)
        cur = next
    }

    /// Re-owns every entry of `dirfd` (directories included, not entered
    /// here) and returns the names of its subdirectories on the same device.
    private static func reownEntries(_ dirfd: Int32, _ path: String, device: UInt, shift: Shift,
                                     out: inout Outcome, visited: inout Int) throws -> [String] {
        var subdirectories: [String] = []
        let dup = try Sys.check("dup \(path)") { fcntl(dirfd, F_DUPFD_CLOEXEC, 0) }
        guard let dir = fdopendir(dup) else { close(dup); throw NativeError.sys("fdopendir \(path)") }
        defer { closedir(dir) }
        rewinddir(dir)
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            visited += 1
            guard visited <= maxEntries else {
                throw NativeError(ODY_E_INVALID, "native: private volume \(path): more than \(maxEntries) entries to shift to guest ids; shift them on the host (uid - \(shift.uidBase)) or run the domain on a VM provider")
            }
            var st = stat()
            if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 { throw NativeError.sys("stat \(path)/\(name)") }
            try reown(dirfd, name, st, shift, path: "\(path)/\(name)", out: &out)
            if (st.st_mode & S_IFMT) == S_IFDIR && st.st_dev == device { subdirectories.append(name) }
        }
        return subdirectories
    }

    /// Gives one entry (`name` in `dirfd`; "" for `dirfd` itself) its guest
    /// ids; ids outside the shifted range stay.
    private static func reown(_ dirfd: Int32, _ name: String, _ st: stat, _ shift: Shift, path: String,
                              out: inout Outcome) throws {
        let uid = shift.uid(st.st_uid), gid = shift.gid(st.st_gid)
        if (uid == nil && st.st_uid >= guestIds) || (gid == nil && st.st_gid >= guestIds) {
            if out.foreign == 0 { out.firstForeign = "\(path) (\(st.st_uid):\(st.st_gid))" }
            out.foreign += 1
        }
        guard uid != nil || gid != nil else { return }
        let newUid = uid ?? st.st_uid, newGid = gid ?? st.st_gid
        try Sys.check("chown \(path)") {
            name.isEmpty ? fchown(dirfd, newUid, newGid) : fchownat(dirfd, name, newUid, newGid, AT_SYMLINK_NOFOLLOW)
        }
        out.shifted += 1
        // chown clears set-user-ID and set-group-ID, even for root: put them
        // back (a regular file: nothing to follow).
        if (st.st_mode & S_IFMT) == S_IFREG && (st.st_mode & (S_ISUID | S_ISGID)) != 0 {
            try Sys.check("chmod \(path)") { fchmodat(dirfd, name, st.st_mode & 0o7777, 0) }
        }
    }
}
