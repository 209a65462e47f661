// An incremental reader for event loops: bytes go in as they arrive, checked
// messages come out. The header is admitted (type x direction x version x
// length) as soon as its 8 bytes are there, before the body is buffered, so a
// peer cannot make the reader hold more than one admitted body.
//
// The fast data path (DataPath.swift) reads with `receive(from:)`, which
// stops at message boundaries, and splices the bodies of data messages from
// the socket to their pipe (`streamable`, `bodyMoved`) instead of copying
// them through this buffer.
#if canImport(Glibc)
import Glibc
#endif

public struct MessageReader: Sendable {
    public let direction: Direction
    /// The version this side announces.
    public let ours: UInt32
    /// The negotiated version; nil until the peer's HELLO was read.
    public private(set) var version: UInt32?
    private var untrusted_buffer: [UInt8] = []
    private var start = 0
    private var admitted: (MsgHeader, Int)?
    /// Bytes of the admitted body the caller already moved itself (streamable).
    private var streamed = 0
    /// Bytes of an abandoned streamed body still to be read and dropped.
    private var discarding = 0

    public init(direction: Direction, ours: UInt32 = QrexecVersion.current, version: UInt32? = nil) {
        self.direction = direction
        self.ours = ours
        self.version = version
    }

    /// Bytes buffered but not yet returned as messages.
    public var pending: Int { untrusted_buffer.count - start }

    public mutating func feed(_ untrusted: UnsafeRawBufferPointer) {
        if start > 0 && start == untrusted_buffer.count { untrusted_buffer.removeAll(keepingCapacity: true); start = 0 }
        untrusted_buffer.append(contentsOf: untrusted)
    }

    /// Receives from a stream socket straight into the buffer, never past
    /// the end of the header or admitted body being assembled: a data body
    /// then starts unbuffered and can be streamed (`streamable`). Returns
    /// what recv returned (errno is recv's).
    public mutating func receive(from fd: Int32) -> Int {
        let want: Int
        if discarding > 0 {
            want = discarding
        } else if let (_, n) = admitted {
            precondition(streamed == 0, "a streamed body must be finished with bodyMoved")   // a caller bug
            want = n - pending
        } else {
            want = MsgHeader.size - pending
        }
        guard want > 0 else { return 0 }
        if start > 0 && start == untrusted_buffer.count { untrusted_buffer.removeAll(keepingCapacity: true); start = 0 }
        let old = untrusted_buffer.count
        untrusted_buffer.append(contentsOf: repeatElement(0, count: want))
        let r = untrusted_buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + old, want, Int32(MSG_DONTWAIT)) }
        let e = errno
        untrusted_buffer.removeLast(want - max(r, 0))
        if discarding > 0 && r > 0 { untrusted_buffer.removeLast(r); discarding -= r }
        errno = e
        return r
    }

    /// Body bytes of an admitted `type` message still in the channel, none
    /// of them buffered here; 0 otherwise. The caller may move them straight
    /// to their destination (splice) and report each move with bodyMoved.
    /// Only non-empty data bodies qualify: they have no rule besides the
    /// length `admit` already checked, so nothing is left unvalidated.
    public func streamable(_ type: MessageType) -> Int {
        precondition(type == .dataStdin || type == .dataStdout, "only data bodies stream")
        guard let (h, n) = admitted, h.type == type, n > 0, pending == 0 else { return 0 }
        return n - streamed
    }

    /// The caller cannot take the rest of a streamed body (its pipe's reader
    /// is gone): `receive` reads and drops it, then goes on with the next header.
    public mutating func discardRestOfBody() {
        guard let (_, n) = admitted, streamed > 0 else { return }
        discarding = n - streamed
        admitted = nil; streamed = 0
    }

    /// `count` body bytes of the admitted message were moved by the caller.
    public mutating func bodyMoved(_ count: Int) {
        guard let (_, n) = admitted else { preconditionFailure("no admitted body") }
        streamed += count
        precondition(streamed <= n, "moved more than the admitted body")
        if streamed == n { admitted = nil; streamed = 0 }
    }

    public mutating func feed(_ untrusted: [UInt8]) {
        untrusted.withUnsafeBytes { feed($0) }
    }

    /// The next whole message, nil if more bytes are needed. A HELLO sets
    /// `version` (the minimum of both, refused below QrexecVersion.minimum).
    public mutating func next() throws(QrexecError) -> QrexecMessage? {
        if discarding > 0 { return nil }
        if admitted == nil {
            guard pending >= MsgHeader.size else { return nil }
            let h = MsgHeader(untrusted_bytes: untrusted_buffer[start..<(start + MsgHeader.size)])
            let n = try MessageRules.admit(h, version: version, direction: direction)
            start += MsgHeader.size
            admitted = (h, n)
        }
        guard streamed == 0, discarding == 0, let (h, n) = admitted, pending >= n else { return nil }   // streamed: the caller's
        let untrusted_body = Array(untrusted_buffer[start..<(start + n)])
        start += n
        admitted = nil
        if start == untrusted_buffer.count { untrusted_buffer.removeAll(keepingCapacity: true); start = 0 }
        else if start > 1 << 20 { untrusted_buffer.removeFirst(start); start = 0 }
        let m = try MessageRules.validate(h, untrusted_body: untrusted_body)
        if case .hello(let info) = m { version = try QrexecVersion.negotiate(ours: ours, untrusted_theirs: info.version) }
        return m
    }
}
