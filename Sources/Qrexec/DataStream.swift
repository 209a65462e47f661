// Data-channel semantics (qrexec-protocol.md): a zero-length STDIN or STDOUT
// message is EOF; EXIT_CODE ends the stream; STDERR and EXIT_CODE sent by the
// *caller* are ignored (QSB-087: a caller must not be able to inject into the
// service side's log or status).
#if canImport(Glibc)
import Glibc
#endif

public enum DataEvent: Equatable, Sendable {
    /// The peer's HELLO (version now negotiated).
    case hello
    /// Bytes for our stdin (service side) or our stdout (caller side).
    case data([UInt8])
    /// End of that stream.
    case eof
    /// Bytes for the caller's stderr (only from a service).
    case stderr([UInt8])
    /// The service's exit status; the stream is over.
    case exit(Int32)
    /// A message with no meaning in this direction (caller STDERR/EXIT_CODE).
    case ignored
}

public enum DataStream {
    /// What a checked data-channel message means to its reader. Messages that
    /// are not data-channel messages cannot arrive here: MessageRules only
    /// admits data types on data directions.
    public static func event(_ m: QrexecMessage, incoming: Direction) -> DataEvent {
        switch (incoming, m) {
        case (_, .hello): .hello
        case (.clientToService, .stdin(let b)): b.isEmpty ? .eof : .data(b)
        case (.clientToService, .stderr), (.clientToService, .exitCode): .ignored
        case (.serviceToClient, .stdout(let b)): b.isEmpty ? .eof : .data(b)
        case (.serviceToClient, .stderr(let b)): b.isEmpty ? .ignored : .stderr(b)
        case (.serviceToClient, .exitCode(let c)): .exit(c)
        default: .ignored
        }
    }

    /// The status a shell would report for a waitpid() status: the exit code,
    /// or 128 + the signal number.
    public static func exitStatus(waitStatus s: Int32) -> Int32 {
        let sig = s & 0x7f
        if sig == 0 { return (s >> 8) & 0xff }
        return 128 + sig
    }
}

/// Bytes queued for a non-blocking socket, sent as the socket accepts them.
public struct OutBuffer: Sendable {
    private var bytes: [UInt8] = []
    private var head = 0

    public init() {}

    public var count: Int { bytes.count - head }
    public var isEmpty: Bool { head == bytes.count }

    public mutating func append(_ m: QrexecMessage) { append(m.encoded) }

    public mutating func append(_ b: [UInt8]) {
        if head == bytes.count { bytes.removeAll(keepingCapacity: true); head = 0 }
        bytes += b
    }

    /// Appends one data message (header + payload) without an intermediate array.
    public mutating func appendData(_ type: MessageType, _ payload: UnsafeRawBufferPointer) {
        if head == bytes.count { bytes.removeAll(keepingCapacity: true); head = 0 }
        bytes += MsgHeader(type: type, len: UInt32(payload.count)).bytes
        bytes.append(contentsOf: payload)
    }

    /// Appends bytes that continue a message already queued (a body whose
    /// header went first).
    public mutating func appendRaw(_ raw: UnsafeRawBufferPointer) {
        if head == bytes.count { bytes.removeAll(keepingCapacity: true); head = 0 }
        bytes.append(contentsOf: raw)
    }

    /// Sends as much as the socket takes now. Returns false if the peer is
    /// gone (EPIPE/ECONNRESET); throws for other errors.
    public mutating func flush(to fd: Int32) throws(QrexecError) -> Bool {
        while head < bytes.count {
            let r = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + head, bytes.count - head, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if r > 0 { head += r; continue }
            let e = errno
            if r < 0 && e == EINTR { continue }
            if r < 0 && e == EAGAIN { break }
            if r < 0 && (e == EPIPE || e == ECONNRESET) { return false }
            throw .io("send", errno: e)
        }
        if head == bytes.count { bytes.removeAll(keepingCapacity: true); head = 0 }
        else if head > 1 << 20 { bytes.removeFirst(head); head = 0 }
        return true
    }
}
