// The qrexec wire format (Qubes libqrexec/qrexec.h): an 8-byte header
// `{ uint32 type; uint32 len }` followed by `len` body bytes, little-endian
// (the native order of every machine Odyssey runs on, fixed here so the
// encoding does not depend on the host).
//
// This module imports no Foundation: it is linked into the static in-domain
// agent and into odysseyd, and must stay small.
//
// Versions (see QrexecVersion): Odyssey announces 4 and accepts peers that
// announce 3 or more; the minimum of the two announcements is used, and a
// message type is admitted only if it exists in the negotiated version.

/// Protocol versions Odyssey speaks.
public enum QrexecVersion {
    /// What Odyssey announces in MSG_HELLO: 4 (Qubes R4.3, adds TRIGGER_SERVICE4).
    public static let current: UInt32 = 4
    /// The lowest version Odyssey accepts: 3 (Qubes R4.1/R4.2, 64 KiB data
    /// chunks, TRIGGER_SERVICE3). Version 2 (4 KiB chunks, R3.0-R4.0) is
    /// refused: every Qubes release still supported speaks 3 or later.
    public static let minimum: UInt32 = 3

    /// min(ours, theirs), refused below `minimum`. `untrusted_theirs` comes from the peer.
    public static func negotiate(ours: UInt32 = current, untrusted_theirs: UInt32) throws(QrexecError) -> UInt32 {
        let v = min(ours, untrusted_theirs)
        guard v >= minimum else { throw QrexecError.unsupportedVersion(untrusted_theirs) }
        return v
    }

    /// Largest body of one DATA_STDIN/STDOUT/STDERR message at version `v`
    /// (MAX_DATA_CHUNK_V2 = 4096, MAX_DATA_CHUNK_V3 = 65536).
    public static func maxDataChunk(_ v: UInt32) -> Int { v >= 3 ? 65536 : 4096 }
}

/// Message types. Unknown values are kept as `.unknown`, never trapped on.
public enum MessageType: Hashable, Sendable, CustomStringConvertible {
    case execCmdline            // 0x200
    case justExec               // 0x201
    case serviceConnect         // 0x202
    case serviceRefused         // 0x203
    case connectionTerminated   // 0x211
    case triggerService3        // 0x212
    case triggerService4        // 0x213
    case hello                  // 0x300
    case dataStdin              // 0x190
    case dataStdout             // 0x191
    case dataStderr             // 0x192
    case dataExitCode           // 0x193
    case unknown(UInt32)

    public init(rawValue: UInt32) {
        switch rawValue {
        case 0x200: self = .execCmdline
        case 0x201: self = .justExec
        case 0x202: self = .serviceConnect
        case 0x203: self = .serviceRefused
        case 0x211: self = .connectionTerminated
        case 0x212: self = .triggerService3
        case 0x213: self = .triggerService4
        case 0x300: self = .hello
        case 0x190: self = .dataStdin
        case 0x191: self = .dataStdout
        case 0x192: self = .dataStderr
        case 0x193: self = .dataExitCode
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: UInt32 {
        switch self {
        case .execCmdline: 0x200
        case .justExec: 0x201
        case .serviceConnect: 0x202
        case .serviceRefused: 0x203
        case .connectionTerminated: 0x211
        case .triggerService3: 0x212
        case .triggerService4: 0x213
        case .hello: 0x300
        case .dataStdin: 0x190
        case .dataStdout: 0x191
        case .dataStderr: 0x192
        case .dataExitCode: 0x193
        case .unknown(let v): v
        }
    }

    public var description: String {
        switch self {
        case .execCmdline: "MSG_EXEC_CMDLINE"
        case .justExec: "MSG_JUST_EXEC"
        case .serviceConnect: "MSG_SERVICE_CONNECT"
        case .serviceRefused: "MSG_SERVICE_REFUSED"
        case .connectionTerminated: "MSG_CONNECTION_TERMINATED"
        case .triggerService3: "MSG_TRIGGER_SERVICE3"
        case .triggerService4: "MSG_TRIGGER_SERVICE4"
        case .hello: "MSG_HELLO"
        case .dataStdin: "MSG_DATA_STDIN"
        case .dataStdout: "MSG_DATA_STDOUT"
        case .dataStderr: "MSG_DATA_STDERR"
        case .dataExitCode: "MSG_DATA_EXIT_CODE"
        case .unknown(let v): "unknown message type 0x" + String(v, radix: 16)
        }
    }
}

/// `struct msg_header { uint32_t type; uint32_t len; }`.
public struct MsgHeader: Equatable, Sendable {
    public static let size = 8
    public var type: MessageType
    public var len: UInt32

    public init(type: MessageType, len: UInt32) {
        self.type = type
        self.len = len
    }

    /// Decodes 8 bytes (nothing is checked here: see MessageRules.admit).
    public init<C: Collection>(untrusted_bytes b: C) where C.Element == UInt8, C.Index == Int {
        precondition(b.count >= MsgHeader.size, "header needs 8 bytes")   // a caller bug, never peer data
        let s = b.startIndex
        type = MessageType(rawValue: LE.u32(b, s))
        len = LE.u32(b, s + 4)
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8)
        LE.append(type.rawValue, to: &out)
        LE.append(len, to: &out)
        return out
    }
}

/// Little-endian helpers.
public enum LE {
    @inline(__always)
    public static func u32<C: Collection>(_ b: C, _ i: Int) -> UInt32 where C.Element == UInt8, C.Index == Int {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    @inline(__always)
    public static func append(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v))
        out.append(UInt8(truncatingIfNeeded: v >> 8))
        out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 24))
    }
}
