// The multiplexer's wire format: one reliable byte stream (a virtio-serial
// port, or one vsock connection) carries frames; each frame belongs to one
// stream or, for HELLO, to the session.
//
//   header (16 bytes, little-endian)
//     0  u16  magic 0x584D ("MX")
//     2  u8   type
//     3  u8   flags (DATA only: 1 = descriptors attached)
//     4  u32  stream id (0 only for HELLO; host ids even, guest ids odd)
//     8  u32  payload length
//    12  u32  aux (OPEN: port; CREDIT: bytes granted; else 0)
//
//   HELLO   stream 0, payload "ODYMUX01" + u64 nonce + u64 echo (the last
//           peer nonce seen). A new peer nonce resets every stream; a HELLO
//           whose echo is not our nonce is answered with ours.
//   OPEN    the sender dials `aux` (port) on a new stream id of its space.
//   ACCEPT  / REFUSE  the answer to OPEN.
//   DATA    1..65536 bytes for the stream (within the receiver's credit).
//           flags & 1: payload = u8 n (1..8) + n u32 new stream ids +
//           the bytes; each new stream is one end of a socketpair that the
//           receiver delivers with SCM_RIGHTS attached to the bytes.
//   CREDIT  the receiver delivered `aux` more bytes to its local reader.
//   EOF     the sender will send no more DATA (shutdown(SHUT_WR) locally).
//   CLOSE   the stream is gone for the sender; the receiver answers CLOSE
//           once (unless it sent one already), then the id is dead.
// Every stream starts with `initialWindow` bytes of credit each way.
//
// Everything read is untrusted: FrameReader checks each header before the
// payload is buffered, bounds every length, and each malformed kind is a
// MuxError.violation (the session is torn down, nothing else).

public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 1, open = 2, accept = 3, refuse = 4, data = 5, credit = 6, eof = 7, close = 8
}

public struct FrameHeader: Equatable, Sendable {
    public static let size = 16
    public static let magic: UInt16 = 0x584D
    public static let fdFlag: UInt8 = 1

    public var type: FrameType
    public var flags: UInt8
    public var stream: UInt32
    public var length: UInt32
    public var aux: UInt32

    public init(_ type: FrameType, stream: UInt32, length: UInt32 = 0, aux: UInt32 = 0, flags: UInt8 = 0) {
        self.type = type; self.flags = flags; self.stream = stream; self.length = length; self.aux = aux
    }

    func write(into out: inout [UInt8]) {
        out.append(UInt8(Self.magic & 0xff)); out.append(UInt8(Self.magic >> 8))
        out.append(type.rawValue); out.append(flags)
        Wire.put32(stream, &out); Wire.put32(length, &out); Wire.put32(aux, &out)
    }
}

public enum MuxProtocol {
    /// Largest DATA byte count in one frame.
    public static let maxData = 65536
    /// Descriptors one DATA frame may carry.
    public static let maxFDsPerFrame = 8
    /// Largest payload of any frame (DATA with the descriptor prefix).
    public static let maxPayload = maxData + 1 + 4 * maxFDsPerFrame
    /// Credit each stream starts with, each way.
    public static let initialWindow = 256 * 1024
    public static let helloMagic: [UInt8] = Array("ODYMUX01".utf8)
    public static let helloLength = 24
}

public enum Wire {
    @inline(__always) static func put32(_ v: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8))
        out.append(UInt8(truncatingIfNeeded: v >> 16)); out.append(UInt8(truncatingIfNeeded: v >> 24))
    }
    @inline(__always) static func put64(_ v: UInt64, _ out: inout [UInt8]) {
        put32(UInt32(truncatingIfNeeded: v), &out); put32(UInt32(truncatingIfNeeded: v >> 32), &out)
    }
    @inline(__always) static func get32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
    @inline(__always) static func get64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(get32(b, at)) | UInt64(get32(b, at + 4)) << 32
    }
}

/// One whole, checked frame.
public struct Frame: Equatable, Sendable {
    public var header: FrameHeader
    public var payload: [UInt8]

    public init(_ header: FrameHeader, payload: [UInt8] = []) { self.header = header; self.payload = payload }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(FrameHeader.size + payload.count)
        var h = header
        h.length = UInt32(payload.count)
        h.write(into: &out)
        out += payload
        return out
    }

    public static func hello(nonce: UInt64, echo: UInt64) -> Frame {
        var p = MuxProtocol.helloMagic
        Wire.put64(nonce, &p); Wire.put64(echo, &p)
        return Frame(FrameHeader(.hello, stream: 0), payload: p)
    }

    /// (nonce, echo) of a checked HELLO.
    public var helloFields: (nonce: UInt64, echo: UInt64) {
        payload.withUnsafeBytes { (Wire.get64($0, 8), Wire.get64($0, 16)) }
    }

    /// DATA with descriptors: the new stream ids and where the bytes start.
    public var passedStreams: (ids: [UInt32], dataStart: Int) {
        guard header.flags & FrameHeader.fdFlag != 0, let n = payload.first else { return ([], 0) }
        let ids = payload.withUnsafeBytes { raw in (0..<Int(n)).map { Wire.get32(raw, 1 + 4 * $0) } }
        return (ids, 1 + 4 * Int(n))
    }

    public static func data(stream: UInt32, bytes: UnsafeRawBufferPointer, passing ids: [UInt32] = []) -> [UInt8] {
        var out: [UInt8] = []
        let extra = ids.isEmpty ? 0 : 1 + 4 * ids.count
        out.reserveCapacity(FrameHeader.size + extra + bytes.count)
        FrameHeader(.data, stream: stream, length: UInt32(extra + bytes.count), flags: ids.isEmpty ? 0 : FrameHeader.fdFlag).write(into: &out)
        if !ids.isEmpty {
            out.append(UInt8(ids.count))
            for id in ids { Wire.put32(id, &out) }
        }
        out.append(contentsOf: bytes)
        return out
    }
}

/// The sanitiser of one untrusted header: nil when well-formed, else why not.
public enum FrameRules {
    public static func check(_ h: FrameHeader) -> String? {
        let t = h.type
        if t == .hello {
            guard h.stream == 0, h.flags == 0, h.aux == 0, h.length == UInt32(MuxProtocol.helloLength) else {
                return "HELLO with stream \(h.stream), flags \(h.flags), aux \(h.aux), length \(h.length)"
            }
            return nil
        }
        guard h.stream != 0 else { return "\(t) on stream 0" }
        switch t {
        case .data:
            guard h.flags & ~FrameHeader.fdFlag == 0 else { return "DATA with unknown flags \(h.flags)" }
            guard h.aux == 0 else { return "DATA with aux \(h.aux)" }
            let max = h.flags == 0 ? MuxProtocol.maxData : MuxProtocol.maxPayload
            guard h.length >= 1, h.length <= UInt32(max) else { return "DATA of \(h.length) bytes (1...\(max))" }
        case .open:
            guard h.flags == 0, h.length == 0, h.aux >= 1, h.aux <= 65535 else { return "OPEN with port \(h.aux), length \(h.length)" }
        case .credit:
            guard h.flags == 0, h.length == 0, h.aux >= 1, h.aux <= UInt32(MuxProtocol.initialWindow) else {
                return "CREDIT of \(h.aux) bytes, length \(h.length)"
            }
        default:
            guard h.flags == 0, h.length == 0, h.aux == 0 else { return "\(t) with flags \(h.flags), length \(h.length), aux \(h.aux)" }
        }
        return nil
    }

    /// The payload checks that need the bytes (HELLO magic, DATA's descriptor prefix).
    public static func check(_ f: Frame) -> String? {
        switch f.header.type {
        case .hello:
            return Array(f.payload.prefix(8)) == MuxProtocol.helloMagic ? nil : "HELLO without the magic"
        case .data where f.header.flags & FrameHeader.fdFlag != 0:
            guard let n = f.payload.first, n >= 1, Int(n) <= MuxProtocol.maxFDsPerFrame else {
                return "DATA passing \(f.payload.first ?? 0) streams (1...\(MuxProtocol.maxFDsPerFrame))"
            }
            let start = 1 + 4 * Int(n)
            guard f.payload.count > start, f.payload.count - start <= MuxProtocol.maxData else {
                return "DATA passing \(n) streams with \(f.payload.count - start) bytes"
            }
            return nil
        default:
            return nil
        }
    }
}
