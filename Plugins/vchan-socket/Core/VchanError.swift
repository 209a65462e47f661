// Errors of the socket vchan, mapped to ody_status codes by the plugin and
// used directly by the agent.
#if canImport(Glibc)
import Glibc
#endif

public enum VchanError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String)
    case closed
    case timeout(String)
    case state(String)
    case io(String, errno: Int32)

    public var description: String {
        switch self {
        case .invalid(let m): m
        case .closed: "channel closed by the peer"
        case .timeout(let m): m
        case .state(let m): m
        case .io(let m, let e): "\(m): \(String(cString: strerror(e)))"
        }
    }

    static func sys(_ what: String) -> VchanError { .io(what, errno: errno) }
}
