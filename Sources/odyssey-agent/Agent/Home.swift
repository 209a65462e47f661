// The default user's home, made at the domain's first start as Qubes does:
// /home is the domain's private volume (empty when new), so /home/<user> is
// created there from /etc/skel and handed to the user. Runs as the domain's
// root before any command; never follows a symlink (the private volume is
// the domain's own data, and could hold one from an earlier session).
#if canImport(Glibc)
import Glibc
#endif

enum Home {
    static func ensure(for name: String) {
        guard let u = Users.lookup(name), u.home.hasPrefix("/home/") else { return }
        var st = stat()
        if lstat(u.home, &st) == 0 { return }   // already there (or something the user made): leave it
        guard mkdir(u.home, 0o700) == 0 else { Log.say("cannot create \(u.home): \(String(cString: strerror(errno)))"); return }
        copySkel(into: u.home, uid: u.uid, gid: u.gid)
        if lchown(u.home, u.uid, u.gid) != 0 { Log.say("cannot give \(u.home) to \(name): \(String(cString: strerror(errno)))") }
        Log.say("created \(u.home) for \(name)")
    }

    /// Regular files at the top of /etc/skel (.bashrc, .profile...); enough
    /// for a login-like environment, nothing recursive to go wrong.
    private static func copySkel(into home: String, uid: UInt32, gid: UInt32) {
        guard let d = opendir("/etc/skel") else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard n != ".", n != "..", !n.contains("/") else { continue }
            let src = open("/etc/skel/" + n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard src >= 0 else { continue }
            defer { close(src) }
            var st = stat()
            guard fstat(src, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let dst = open(home + "/" + n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard dst >= 0 else { continue }
            defer { close(dst) }
            var buf = [UInt8](repeating: 0, count: 16384)
            while true {
                let r = read(src, &buf, buf.count)
                if r <= 0 { break }
                _ = buf.withUnsafeBytes { write(dst, $0.baseAddress, r) }
            }
            fchown(dst, uid, gid)
        }
    }
}
