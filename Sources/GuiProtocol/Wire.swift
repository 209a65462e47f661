// The wire format, ours (learned from Qubes' GUI protocol, not copied):
// every message is a 12-byte little-endian header {type, window,
// untrusted_length} and a body. The length is the sender's claim: the
// receiver bounds it by type before reading a single body byte.
//
// Both sides open with `hello` {major, minor}; a differing major closes the
// channel, and the session speaks min(minor). Everything is little-endian.

public enum GuiVersion {
    public static let major: UInt32 = 1
    public static let minor: UInt32 = 0
}

public enum GuiMessageType: UInt32, CaseIterable, Sendable {
    // Both directions.
    case hello = 1
    // Domain -> host.
    case create = 2, destroy = 3, map = 4, unmap = 5, configure = 6
    case title = 7, windowClass = 8, hints = 9, damage = 10, clipboardData = 11
    // Host -> domain.
    case screen = 64, key = 65, button = 66, motion = 67, focus = 68
    case close = 69, clipboardRequest = 70, clipboardPaste = 71, destroyAck = 72, configureAck = 73

    public var fromDomain: Bool { rawValue < 64 }
    public var toDomain: Bool { self == .hello || rawValue >= 64 }
}

public struct GuiHeader: Equatable, Sendable {
    public static let size = 12
    public let rawType: UInt32
    public let window: UInt32
    /// The sender's claim; never used before `admit` bounded it.
    public let untrustedLength: UInt32

    public init(rawType: UInt32, window: UInt32, untrustedLength: UInt32) {
        self.rawType = rawType
        self.window = window
        self.untrustedLength = untrustedLength
    }

    /// Reads a header from exactly 12 bytes.
    public init(_ bytes: ArraySlice<UInt8>) {
        var r = LittleEndianReader(bytes)
        rawType = r.u32()
        window = r.u32()
        untrustedLength = r.u32()
    }
}

/// Reads fixed-width little-endian fields from a body whose length was
/// already checked: reading past the end returns 0 rather than trapping, so
/// a checking mistake elsewhere cannot become a crash.
public struct LittleEndianReader {
    private let bytes: ArraySlice<UInt8>
    private var offset: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    public mutating func u32() -> UInt32 {
        guard offset + 4 <= bytes.endIndex else { offset = bytes.endIndex; return 0 }
        let v = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
        offset += 4
        return v
    }

    public mutating func i32() -> Int32 { Int32(bitPattern: u32()) }

    /// What is left after the fixed fields.
    public var rest: ArraySlice<UInt8> { bytes[offset...] }
}

/// Builds messages (both directions: the daemon's to the domain, and the
/// test client's and agent's to the host).
public struct GuiMessageWriter {
    public private(set) var bytes: [UInt8] = []

    public init(_ type: GuiMessageType, window: UInt32 = 0) {
        bytes.reserveCapacity(64)
        put(type.rawValue); put(window); put(0 as UInt32)
    }

    /// A message whose header claims `claimedLength` whatever the body is
    /// (tests of the receiver's bounds).
    public init(rawType: UInt32, window: UInt32, claimedLength: UInt32) {
        put(rawType); put(window); put(claimedLength)
    }

    public mutating func put(_ v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v)); bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v >> 16)); bytes.append(UInt8(truncatingIfNeeded: v >> 24))
    }

    public mutating func put(_ v: Int32) { put(UInt32(bitPattern: v)) }

    public mutating func put<C: Collection>(bytes more: C) where C.Element == UInt8 { bytes.append(contentsOf: more) }

    /// The message with its length field set to the body written.
    public var message: [UInt8] {
        var out = bytes
        let len = UInt32(out.count - GuiHeader.size)
        out[8] = UInt8(truncatingIfNeeded: len); out[9] = UInt8(truncatingIfNeeded: len >> 8)
        out[10] = UInt8(truncatingIfNeeded: len >> 16); out[11] = UInt8(truncatingIfNeeded: len >> 24)
        return out
    }
}
