// Every way a qrexec message or stream can be refused. A peer's bad input is
// always one of these, never a trap: the caller closes that one connection.

public enum QrexecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A type value this protocol does not define.
    case unknownType(UInt32)
    /// A defined type that may not travel in this direction (e.g. EXEC_CMDLINE from an agent).
    case unexpectedType(MessageType, direction: Direction)
    /// A type that does not exist in the negotiated version (TRIGGER_SERVICE4 at version 3).
    case typeNotInVersion(MessageType, version: UInt32)
    /// The first message of a stream must be MSG_HELLO, and only the first.
    case helloExpected(got: MessageType)
    case duplicateHello
    /// `len` is not what the type allows.
    case badLength(MessageType, len: UInt32, rule: String)
    /// A string field lacks its NUL terminator.
    case notTerminated(MessageType, field: String)
    /// A NUL inside a string that must have none before its terminator.
    case interiorNUL(MessageType, field: String)
    /// A fixed-size field has non-NUL bytes after its terminator.
    case badPadding(MessageType, field: String)
    /// An ident outside `[0-9A-Za-z_.- ]`.
    case badIdent(MessageType)
    /// A name the sanitiser refuses (empty, leading '+', too long).
    case refusedName(field: String, reason: String)
    /// A command line that is not `user:command`.
    case badCommandLine(String)
    /// The peer announced a version below QrexecVersion.minimum.
    case unsupportedVersion(UInt32)
    /// The peer closed the stream between messages.
    case closed
    /// The peer closed the stream inside a message.
    case truncated(expected: Int, got: Int)
    /// A syscall failed.
    case io(String, errno: Int32)

    public var description: String {
        switch self {
        case .unknownType(let t): "unknown message type 0x\(String(t, radix: 16))"
        case .unexpectedType(let t, let d): "\(t) is not allowed \(d)"
        case .typeNotInVersion(let t, let v): "\(t) does not exist in protocol version \(v)"
        case .helloExpected(let t): "expected MSG_HELLO first, got \(t)"
        case .duplicateHello: "MSG_HELLO after the handshake"
        case .badLength(let t, let len, let rule): "\(t) with length \(len) (must be \(rule))"
        case .notTerminated(let t, let f): "\(t): \(f) is not NUL-terminated"
        case .interiorNUL(let t, let f): "\(t): \(f) contains a NUL byte"
        case .badPadding(let t, let f): "\(t): \(f) is not NUL-padded"
        case .badIdent(let t): "\(t): request ident has characters outside [0-9A-Za-z_.- ]"
        case .refusedName(let f, let r): "\(f) refused: \(r)"
        case .badCommandLine(let r): "bad command line: \(r)"
        case .unsupportedVersion(let v): "peer speaks qrexec protocol version \(v); at least \(QrexecVersion.minimum) is required"
        case .closed: "peer closed the channel"
        case .truncated(let e, let g): "peer closed the channel inside a message (\(g) of \(e) bytes)"
        case .io(let what, let e): "\(what) failed (errno \(e))"
        }
    }

    /// True for errors that say the peer misbehaved (as opposed to EOF or I/O).
    public var isProtocolViolation: Bool {
        switch self {
        case .closed, .io: false
        default: true
        }
    }
}

/// Which way a message travels; each direction admits its own set of types.
public enum Direction: Sendable, Equatable, CustomStringConvertible {
    /// Control channel, admin domain (daemon) to agent.
    case hostToAgent
    /// Control channel, agent to admin domain (daemon).
    case agentToHost
    /// Data channel, from the side running the command/service to the caller.
    case serviceToClient
    /// Data channel, from the caller to the side running the command/service.
    case clientToService

    public var description: String {
        switch self {
        case .hostToAgent: "from the host to an agent"
        case .agentToHost: "from an agent to the host"
        case .serviceToClient: "from a service to its caller"
        case .clientToService: "from a caller to its service"
        }
    }
}
