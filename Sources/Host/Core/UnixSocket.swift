// Unix stream sockets for the admin socket, through the syscall layer.
import CSupport
#if canImport(Glibc)
import Glibc
#endif

public enum UnixSocket {
    static func address(_ path: String) throws(OdysseyError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw OdysseyError(.invalid, "socket path too long (\(bytes.count) bytes): \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return addr
    }

    /// Binds and listens at `path`, replacing a stale socket file, with `mode`.
    public static func listen(path: String, mode: mode_t, backlog: Int32 = 128) throws(OdysseyError) -> Int32 {
        var addr = try address(path)
        let fd = try Sys.retry("socket AF_UNIX") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        unlink(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { let e = Sys.error("bind \(path)"); Sys.close(fd); throw e }
        if chmod(path, mode) != 0 { let e = Sys.error("chmod \(path)"); Sys.close(fd); throw e }
        if Glibc.listen(fd, backlog) != 0 { let e = Sys.error("listen \(path)"); Sys.close(fd); throw e }
        return fd
    }

    public static func connect(path: String) throws(OdysseyError) -> Int32 {
        var addr = try address(path)
        let fd = try Sys.retry("socket AF_UNIX") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { let e = Sys.error("connect \(path)"); Sys.close(fd); throw e }
        return fd
    }

    /// Accepts one connection; nil when the listening socket was shut down.
    public static func accept(_ listenFD: Int32) -> Int32? {
        while true {
            let fd = ody_accept_cloexec(listenFD)
            if fd >= 0 { return fd }
            switch errno {
            case EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM: 
                if errno != EINTR && errno != ECONNABORTED { usleep(10_000) }   // out of fds: back off, keep serving
                continue
            default: return nil
            }
        }
    }

    /// The peer's uid (SO_PEERCRED): who is on the other end, from the kernel.
    public static func peerUID(_ fd: Int32) -> uid_t? {
        var uid: uid_t = 0
        guard ody_peer_cred(fd, nil, &uid, nil) == 0 else { return nil }
        return uid
    }

    /// The peer's pid, uid and gid (SO_PEERCRED), from the kernel.
    public static func peerCredentials(_ fd: Int32) -> (pid: pid_t, uid: uid_t, gid: gid_t)? {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        guard ody_peer_cred(fd, &pid, &uid, &gid) == 0 else { return nil }
        return (pid, uid, gid)
    }

    /// Whether the user `uid` is in group `gid` (primary or supplementary).
    public static func isMember(uid: uid_t, of gid: gid_t) -> Bool {
        guard let pw = getpwuid(uid) else { return false }
        var groups = [gid_t](repeating: 0, count: 256)
        var n: Int32 = 256
        guard getgrouplist(pw.pointee.pw_name, pw.pointee.pw_gid, &groups, &n) >= 0 else { return false }
        return groups.prefix(Int(n)).contains(gid)
    }
}
