// A transport whose descriptors are handed in by someone else: the host's
// vsock acceptor gives each domain's session the connection whose peer CID
// is that domain's. A newer connection replaces an older unused one.
#if canImport(Glibc)
import Glibc
#endif

public final class HandoffTransport: MuxTransport, @unchecked Sendable {
    private let monitor = MuxMonitor()
    private var pending: Int32 = -1
    public let label: String
    public init(label: String) { self.label = label }
    deinit { if pending >= 0 { close(pending) } }
    public var hangupIsPeerAbsence: Bool { false }
    public var reconnects: Bool { true }

    public func handOver(_ fd: Int32) {
        let old: Int32 = monitor.locked { defer { pending = fd }; return pending }
        if old >= 0 { close(old) }
    }

    public func connect() -> Int32? {
        monitor.locked {
            defer { pending = -1 }
            return pending >= 0 ? pending : nil
        }
    }
}
