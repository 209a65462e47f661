// The one error type of the multiplexer. `violation` is a peer that broke
// the protocol (the session is torn down); the rest are local outcomes.
#if canImport(Glibc)
import Glibc
#endif

public enum MuxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer sent something the protocol does not allow (untrusted input).
    case violation(String)
    /// The peer has no listener on the port (like ECONNREFUSED).
    case refused(port: UInt32)
    /// The session was reset (peer reconnected, transport lost) or stopped.
    case reset(String)
    case timeout(String)
    case invalid(String)
    case io(String, errno: Int32)

    public var description: String {
        switch self {
        case .violation(let m): "mux protocol violation: \(m)"
        case .refused(let p): "mux port \(p): no listener on the other side"
        case .reset(let m): "mux session reset: \(m)"
        case .timeout(let m): m
        case .invalid(let m): m
        case .io(let m, let e): "\(m): \(String(cString: strerror(e)))"
        }
    }

    static func sys(_ what: String) -> MuxError { .io(what, errno: errno) }
}
