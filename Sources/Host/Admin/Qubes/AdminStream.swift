// A connection that carries a stream of events (admin.Events) instead of one
// reply. The admin socket hands the connection to the handler through
// `AdminConnection.current`; qrexec (or a test) builds one from its own fd.
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class AdminStream: Sendable {
    public let fd: Int32
    private let used = Atomic<Bool>(false)

    /// `fd` stays owned by the caller; the stream never closes it.
    public init(fd: Int32) { self.fd = fd }

    /// Once a handler has written to the stream, the server sends no reply of its own.
    var wasUsed: Bool { used.load(ordering: .acquiring) }

    /// Writes all bytes without raising SIGPIPE; false once the peer is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        used.store(true, ordering: .releasing)
        return AdminIO.sendAll(fd, bytes)
    }

    /// Unblocks a writer stuck on a slow peer and ends the stream.
    func cut() { _ = shutdown(fd, Int32(SHUT_RDWR)) }
}

enum AdminIO {
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                var n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == ENOTSOCK {   // a pipe (a qrexec data channel): SIGPIPE is ignored by odysseyd
                    n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                }
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
    }
}

/// The connection the current thread is serving (set by AdminServer around
/// the handler call), so the table-driven handler can stream on it.
enum AdminConnection {
    private static let table = Mutex<[UInt: AdminStream]>([:])
    private static var me: UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }

    static func with<T>(_ s: AdminStream, _ body: () -> T) -> T {
        let id = me
        table.withLock { $0[id] = s }
        defer { table.withLock { _ = $0.removeValue(forKey: id) } }
        return body()
    }

    static var current: AdminStream? { let id = me; return table.withLock { $0[id] } }
}
