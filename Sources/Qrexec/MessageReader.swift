// An incremental reader for event loops: bytes go in as they arrive, checked
// messages come out. The header is admitted (type x direction x version x
// length) as soon as its 8 bytes are there, before the body is buffered, so a
// peer cannot make the reader hold more than one admitted body.

public struct MessageReader: Sendable {
    public let direction: Direction
    /// The version this side announces.
    public let ours: UInt32
    /// The negotiated version; nil until the peer's HELLO was read.
    public private(set) var version: UInt32?
    private var untrusted_buffer: [UInt8] = []
    private var start = 0
    private var admitted: (MsgHeader, Int)?

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

    public mutating func feed(_ untrusted: [UInt8]) {
        untrusted.withUnsafeBytes { feed($0) }
    }

    /// The next whole message, nil if more bytes are needed. A HELLO sets
    /// `version` (the minimum of both, refused below QrexecVersion.minimum).
    public mutating func next() throws(QrexecError) -> QrexecMessage? {
        if admitted == nil {
            guard pending >= MsgHeader.size else { return nil }
            let h = MsgHeader(untrusted_bytes: untrusted_buffer[start..<(start + MsgHeader.size)])
            let n = try MessageRules.admit(h, version: version, direction: direction)
            start += MsgHeader.size
            admitted = (h, n)
        }
        guard let (h, n) = admitted, pending >= n else { return nil }
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
