// Turns the untrusted byte stream from the transport into checked frames.
//
// Two modes. Synced: every byte belongs to a frame; a bad header is a
// violation at once (nothing after it can be trusted). Scanning (after the
// transport (re)connected, or on a virtio-serial port whose host end came
// back): the bytes may start mid-frame or belong to the peer's previous
// session, so everything up to the first well-formed HELLO is discarded
// (at most `maxScan` bytes, then a violation).

public struct FrameReader: Sendable {
    private var buf: [UInt8] = []
    private var start = 0
    public private(set) var scanning = true
    public private(set) var discarded = 0
    public let maxScan: Int

    public init(maxScan: Int = 4 << 20) { self.maxScan = maxScan }

    public var pending: Int { buf.count - start }

    /// Forget everything buffered and look for the next HELLO.
    public mutating func resync() {
        buf.removeAll(keepingCapacity: true)
        start = 0
        scanning = true
        discarded = 0
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buf.count / 2 {
            buf.removeFirst(start)
            start = 0
        }
        buf.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    /// The next whole frame, nil when more bytes are needed.
    public mutating func next() throws(MuxError) -> Frame? {
        if scanning {
            guard try scanForHello() else { return nil }
        }
        guard pending >= FrameHeader.size else { return nil }
        let untrusted_header = buf.withUnsafeBytes { Self.parseHeader(UnsafeRawBufferPointer(rebasing: $0[start..<start + FrameHeader.size])) }
        guard let h = untrusted_header else {
            throw .violation("bad frame header: \(buf[start..<start + FrameHeader.size].map { String($0, radix: 16) }.joined(separator: " "))")
        }
        if let why = FrameRules.check(h) { throw .violation(why) }
        let total = FrameHeader.size + Int(h.length)
        guard pending >= total else { return nil }
        let f = Frame(h, payload: Array(buf[start + FrameHeader.size..<start + total]))
        start += total
        if let why = FrameRules.check(f) { throw .violation(why) }
        return f
    }

    /// Magic and a known type; nil otherwise.
    static func parseHeader(_ b: UnsafeRawBufferPointer) -> FrameHeader? {
        guard b.count >= FrameHeader.size, UInt16(b[0]) | UInt16(b[1]) << 8 == FrameHeader.magic,
              let t = FrameType(rawValue: b[2]) else { return nil }
        return FrameHeader(t, stream: Wire.get32(b, 4), length: Wire.get32(b, 8), aux: Wire.get32(b, 12), flags: b[3])
    }

    /// Drops bytes up to the first well-formed HELLO; true once one is at `start`.
    private mutating func scanForHello() throws(MuxError) -> Bool {
        let m = MuxProtocol.helloMagic
        let need = FrameHeader.size + MuxProtocol.helloLength
        var found: Int? = nil
        buf.withUnsafeBytes { raw in
            var i = start
            while i + need <= raw.count {
                if raw[i] == 0x4D, raw[i + 1] == 0x58, raw[i + 2] == FrameType.hello.rawValue,
                   let h = Self.parseHeader(UnsafeRawBufferPointer(rebasing: raw[i..<i + FrameHeader.size])),
                   FrameRules.check(h) == nil,
                   (0..<8).allSatisfy({ raw[i + FrameHeader.size + $0] == m[$0] }) {
                    found = i
                    return
                }
                i += 1
            }
        }
        if let found {
            discarded += found - start
            start = found
            scanning = false
            return true
        }
        // Keep the tail that could still be the start of a HELLO.
        let keep = min(pending, need - 1)
        discarded += pending - keep
        start = buf.count - keep
        if discarded > maxScan { throw .violation("no HELLO in the first \(discarded) bytes") }
        return false
    }
}
