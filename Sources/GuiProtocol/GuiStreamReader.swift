// Cuts a domain's byte stream into messages. The header's length is bounded
// by GuiValidator.admit before the reader waits for (or buffers) the body,
// so a domain cannot make the daemon hold more than one bounded message.

public struct GuiStreamReader {
    private var buffer: [UInt8] = []
    private var start = 0
    private var pending: (GuiHeader, Int)?

    public init() {}

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 { buffer.append(contentsOf: bytes) }

    /// Bytes received and not yet consumed.
    public var buffered: Int { buffer.count - start }

    /// The next whole message, validated; nil if more bytes are needed.
    public mutating func next(_ validator: inout GuiValidator) throws(GuiProtocolError) -> DomainMessage? {
        if pending == nil {
            guard buffered >= GuiHeader.size else { return nil }
            let header = GuiHeader(buffer[start..<(start + GuiHeader.size)])
            pending = (header, try validator.admit(header))
        }
        guard let (header, length) = pending, buffered >= GuiHeader.size + length else { return nil }
        let bodyStart = start + GuiHeader.size
        let message = try validator.validate(header, body: buffer[bodyStart..<(bodyStart + length)])
        start = bodyStart + length
        pending = nil
        if start == buffer.count { buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20); start = 0 }
        else if start > 1 << 20 { buffer.removeFirst(start); start = 0 }
        return message
    }
}
