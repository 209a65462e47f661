// AF_VSOCK addresses and calls, by hand: Swift's Glibc module does not
// include <linux/vm_sockets.h>. NEVER used on a host without
// /dev/vhost-vsock: with no loopback transport, a vsock connection there
// would leave the machine. The guest dials the host (CID 2); the host's
// vsock plugin listens and admits a connection by its peer CID.
#if canImport(Glibc)
import Glibc
#endif

public enum Vsock {
    public static let family: Int32 = 40          // AF_VSOCK
    public static let hostCID: UInt32 = 2         // VMADDR_CID_HOST
    public static let anyCID: UInt32 = 0xFFFF_FFFF

    /// struct sockaddr_vm: u16 family, u16 reserved, u32 port, u32 cid, u8 zero[4].
    static func address(cid: UInt32, port: UInt32) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: 16)
        a[0] = UInt8(family & 0xff); a[1] = UInt8(family >> 8)
        for i in 0..<4 { a[4 + i] = UInt8(truncatingIfNeeded: port >> (8 * UInt32(i))) }
        for i in 0..<4 { a[8 + i] = UInt8(truncatingIfNeeded: cid >> (8 * UInt32(i))) }
        return a
    }

    /// A connected stream socket to cid:port, or the errno.
    public static func connect(cid: UInt32, port: UInt32) -> Result<Int32, MuxError> {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return .failure(.sys("socket(AF_VSOCK)")) }
        let a = address(cid: cid, port: port)
        let rc = a.withUnsafeBytes { Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 16) }
        if rc != 0 { let e = MuxError.sys("vsock connect cid=\(cid) port=\(port)"); close(fd); return .failure(e) }
        return .success(fd)
    }

    /// A listening stream socket on `port` (any CID).
    public static func listen(port: UInt32) -> Result<Int32, MuxError> {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return .failure(.sys("socket(AF_VSOCK)")) }
        let a = address(cid: anyCID, port: port)
        let rc = a.withUnsafeBytes { Glibc.bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 16) }
        if rc != 0 || Glibc.listen(fd, 16) != 0 { let e = MuxError.sys("vsock bind/listen port=\(port)"); close(fd); return .failure(e) }
        return .success(fd)
    }

    /// accept(): the connection and the peer's CID (the kernel's word, not the peer's).
    public static func accept(_ listener: Int32) -> (fd: Int32, cid: UInt32)? {
        var a = [UInt8](repeating: 0, count: 16)
        var len = socklen_t(16)
        let fd = a.withUnsafeMutableBytes { Glibc.accept(listener, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len) }
        if fd < 0 { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let cid = UInt32(a[8]) | UInt32(a[9]) << 8 | UInt32(a[10]) << 16 | UInt32(a[11]) << 24
        return (fd, cid)
    }
}

/// The guest's side of a vsock mux: one connection to the host's port.
public final class VsockTransport: MuxTransport, @unchecked Sendable {
    public let cid: UInt32
    public let port: UInt32
    public init(cid: UInt32, port: UInt32) { self.cid = cid; self.port = port }
    public var label: String { "vsock \(cid):\(port)" }
    public var hangupIsPeerAbsence: Bool { false }
    public var reconnects: Bool { true }
    public func connect() -> Int32? {
        guard case .success(let fd) = Vsock.connect(cid: cid, port: port) else { return nil }
        return fd
    }
}
