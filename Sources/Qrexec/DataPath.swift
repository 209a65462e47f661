// The zero-copy data path shared by both ends of a data channel (the
// agent's Session.pump and DataClient): data bodies move between a pipe and
// the channel socket with splice(2), so a byte crosses user memory nowhere
// between the producer's write and the consumer's read. The wire format is
// unchanged: every body still follows its own header, at most
// QrexecVersion.maxDataChunk bytes, and every incoming header still passes
// MessageRules.admit before its body is touched (MessageReader.streamable).
//
// Both helpers fall back to plain read/write when a pair of files cannot be
// spliced (EINVAL: a socket service, an exotic stdin), so correctness never
// depends on splice.
#if canImport(Glibc)
import Glibc
#endif
import VchanSocketCore

/// Outgoing data messages whose bodies wait in a pipe: the header is queued
/// in the OutBuffer, then exactly the announced bytes are spliced from the
/// pipe to the socket once the OutBuffer is flushed. The pipe must be read
/// by this process alone, so the bytes announced stay there until moved.
public struct SpliceSender: Sendable {
    public let type: MessageType
    /// Body bytes announced in a queued header and not yet sent: nothing
    /// else may be queued until this is 0 (it would land inside the body).
    public private(set) var owed = 0

    public init(type: MessageType) { self.type = type }

    /// Queues the header of a `size`-byte body (1...maxDataChunk) that waits in the pipe.
    public mutating func announce(_ size: Int, into out: inout OutBuffer) {
        precondition(owed == 0 && size > 0, "one body at a time")
        out.append(MsgHeader(type: type, len: UInt32(size)).bytes)
        owed = size
    }

    public enum Progress { case done, blocked, peerGone }

    /// Flushes `out`, then moves owed bytes from `pipe` to `socket` (non-blocking).
    public mutating func drain(from pipe: Int32, to socket: Int32, out: inout OutBuffer) throws(QrexecError) -> Progress {
        guard try out.flush(to: socket) else { return .peerGone }
        while owed > 0 {
            guard out.isEmpty else { return .blocked }
            switch Splice.move(from: pipe, to: socket, max: owed) {
            case .moved(let n): owed -= n
            case .wouldBlock: return .blocked   // the socket is full: the pipe holds the bytes
            case .peerGone: return .peerGone
            case .end, .failed: try copyOwed(from: pipe, into: &out)
            }
        }
        return .done
    }

    /// The peer went away: forget the body (nothing more is sent).
    public mutating func abandon() { owed = 0 }

    /// Fallback when this pipe and socket cannot be spliced: the owed bytes
    /// are read (they are in the pipe) and queued after their header.
    private mutating func copyOwed(from pipe: Int32, into out: inout OutBuffer) throws(QrexecError) {
        let bytes = try FD.readExact(pipe, owed, eofIsClosed: false)
        bytes.withUnsafeBytes { out.appendRaw($0) }
        owed = 0
    }
}

/// Incoming data bodies spliced from the socket to a pipe.
public enum SpliceReceiver {
    public enum Progress {
        /// No streamable body left (the next header, if any, is the reader's).
        case done
        case socketEmpty
        /// The pipe is full: wait until it is writable.
        case pipeFull
        /// EPIPE: the pipe's reader is gone.
        case pipeGone
        /// EOF or an error on the socket in the middle of a body.
        case closed
        /// These two cannot be spliced (EINVAL); nothing of this body was
        /// moved, so the caller can read it the ordinary way.
        case unsupported
    }

    /// Moves the streamable body of the admitted `type` message from
    /// `socket` to `pipe` as far as both allow; adds what it moved to `moved`.
    public static func pump(_ reader: inout MessageReader, _ type: MessageType, from socket: Int32, to pipe: Int32,
                            moved: inout Int) -> Progress {
        var movedAny = false
        while true {
            let left = reader.streamable(type)
            if left == 0 { return .done }
            switch Splice.move(from: socket, to: pipe, max: left) {
            case .moved(let n): reader.bodyMoved(n); movedAny = true; moved += n
            case .wouldBlock:
                // Either side: bytes waiting in the socket mean the pipe is full.
                return (Splice.readable(socket) ?? 0) > 0 ? .pipeFull : .socketEmpty
            case .end: return .closed
            case .peerGone: return .pipeGone
            case .failed(let e): return e == EINVAL && !movedAny ? .unsupported : .closed
            }
        }
    }
}
