// Where the multiplexed byte stream comes from. The session asks its
// transport for a connected descriptor whenever it has none, and retries with
// a bounded backoff while the other end is not there yet.
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket

public protocol MuxTransport: AnyObject, Sendable {
    var label: String { get }
    /// A connected non-blocking close-on-exec descriptor, or nil (not yet: retried later).
    func connect() -> Int32?
    /// true for a virtio-serial port inside the guest: POLLHUP or EOF means
    /// "the host end is not connected now", so the descriptor is kept and
    /// polled again after a pause; the session resyncs when it comes back.
    var hangupIsPeerAbsence: Bool { get }
    /// false: one descriptor only (an accepted vsock connection); when it
    /// ends, the session ends.
    var reconnects: Bool { get }
}

/// A Unix stream socket by path: the host's end of QEMU's chardev socket
/// (libvirt `<channel type='unix'>`), and the guest side of tests.
public final class UnixSocketTransport: MuxTransport, @unchecked Sendable {
    public let path: String
    public init(path: String) { self.path = path }
    public var label: String { "unix socket \(path)" }
    public var hangupIsPeerAbsence: Bool { false }
    public var reconnects: Bool { true }

    public func connect() -> Int32? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return nil }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { Glibc.close(fd); return nil }
        LocalSocket.setNonBlocking(fd)
        return fd
    }
}

/// A character device: the guest's virtio-serial port (/dev/vportNpM).
public final class CharDeviceTransport: MuxTransport, @unchecked Sendable {
    public let path: String
    public init(path: String) { self.path = path }
    public var label: String { "port \(path)" }
    public var hangupIsPeerAbsence: Bool { true }
    public var reconnects: Bool { true }

    public func connect() -> Int32? {
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        return fd >= 0 ? fd : nil
    }
}

/// A descriptor connected by someone else (an accepted vsock connection;
/// tests). Handed out once.
public final class ConnectedTransport: MuxTransport, @unchecked Sendable {
    private var fd: Int32
    public let label: String
    public init(fd: Int32, label: String) { self.fd = fd; self.label = label; LocalSocket.setNonBlocking(fd) }
    public var hangupIsPeerAbsence: Bool { false }
    public var reconnects: Bool { false }
    public func connect() -> Int32? { defer { fd = -1 }; return fd >= 0 ? fd : nil }
}

/// The local side of each stream: a Unix socketpair end, and the calls Swift
/// needs for it (SCM_RIGHTS through the vchan-socket C shim).
public enum LocalSocket {
    public static func setNonBlocking(_ fd: Int32) {
        let fl = fcntl(fd, F_GETFL)
        if fl >= 0 && fl & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, fl | O_NONBLOCK) }
    }

    /// A close-on-exec stream socketpair; both ends blocking.
    public static func pair() throws(MuxError) -> (Int32, Int32) {
        var p: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &p) == 0 else { throw .sys("socketpair") }
        return (p[0], p[1])
    }

    public static func isStreamSocket(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == Int32(SOCK_STREAM.rawValue)
    }

    /// recvmsg of up to `max` bytes into `buf`, with descriptors (close-on-exec).
    public static func receive(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ max: Int, fds: inout [Int32]) -> Int {
        var got = [Int32](repeating: -1, count: 16)
        var n: Int32 = 0
        let r = got.withUnsafeMutableBufferPointer { vs_recv_fds(fd, buf, max, $0.baseAddress, 16, &n, Int32(MSG_DONTWAIT)) }
        if n > 0 { fds += got[0..<Int(n)] }
        return r
    }

    /// sendmsg with `fds` attached; returns bytes sent or -1.
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, fds: [Int32]) -> Int {
        fds.withUnsafeBufferPointer { f in
            vs_send_fds(fd, bytes.baseAddress, bytes.count, f.baseAddress, Int32(f.count), Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        }
    }
}

/// The far side of a listening Unix socket: each accepted connection in turn
/// is the transport. It plays QEMU's guest side in tests (QEMU listens on
/// the chardev socket; whatever the host sends on a connection reaches the
/// guest's port, and a new host connection continues on the same port).
public final class AcceptingTransport: MuxTransport, @unchecked Sendable {
    public let listenFD: Int32
    public let label: String
    /// Takes ownership of a listening socket (made non-blocking here).
    public init(listenFD: Int32, label: String) {
        self.listenFD = listenFD; self.label = label
        LocalSocket.setNonBlocking(listenFD)
    }
    deinit { close(listenFD) }
    public var hangupIsPeerAbsence: Bool { false }
    public var reconnects: Bool { true }
    public func connect() -> Int32? {
        let fd = accept(listenFD, nil, nil)
        if fd < 0 { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// A listening Unix socket at `path` (a stale file is replaced).
    public static func listen(path: String) throws(MuxError) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw .invalid("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .sys("socket") }
        unlink(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 || Glibc.listen(fd, 4) != 0 { let e = MuxError.sys("bind/listen \(path)"); close(fd); throw e }
        return fd
    }
}
