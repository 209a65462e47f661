// One multiplexed stream as the session's loop sees it: the local socket it
// pumps, the credit each way, and how far each direction has closed.
// Owned by the loop thread only.
#if canImport(Glibc)
import Glibc
#endif

final class MuxStream {
    /// Bytes waiting for the local reader; `fds` go with the chunk's bytes.
    struct Chunk { var bytes: [UInt8]; var offset = 0; var fds: [Int32] = [] }

    let id: UInt32
    /// Our end of the local socketpair (or the passed socket); -1 once closed.
    var local: Int32
    /// Guest: OPEN sent, no ACCEPT yet.
    var opening: Bool
    /// Bytes we may still send to the peer.
    var sendCredit = MuxProtocol.initialWindow
    /// Bytes the peer sent that we have not credited back yet.
    var recvOutstanding = 0
    var deliveredUncredited = 0
    var toLocal: [Chunk] = []
    var toLocalBytes = 0
    /// We read EOF locally and sent EOF.
    var localEOF = false
    /// The peer sent EOF; shutdown(SHUT_WR) once toLocal is drained.
    var peerEOF = false
    var shutWrDone = false
    /// The local user reads no more (it closed, or shut its reading side:
    /// EPIPE). What it wrote before that may still be unread in our end, so
    /// the stream lives on until that is read to EOF; the peer's bytes are
    /// dropped (and credited back) meanwhile.
    var localReaderGone = false
    var sentClose = false
    var peerClosed = false

    init(id: UInt32, local: Int32, opening: Bool) {
        self.id = id; self.local = local; self.opening = opening
    }

    var finished: Bool { local < 0 && sentClose && peerClosed }

    /// The peer may still send DATA/EOF/CREDIT for it.
    var acceptsFrames: Bool { !peerClosed }

    func closeLocal() {
        if local >= 0 { close(local); local = -1 }
        _ = dropToLocal()
    }

    /// Forgets the bytes (and descriptors) queued for the local reader;
    /// returns how many bytes that was.
    func dropToLocal() -> Int {
        let n = toLocalBytes
        for c in toLocal { for f in c.fds { close(f) } }
        toLocal = []
        toLocalBytes = 0
        return n
    }

    /// `readerGone`: the local user will read no more (EPIPE, ECONNRESET),
    /// but our end may still hold what it wrote; `gone`: the socket is
    /// closed or failed otherwise.
    enum Flush { case drained, blocked, readerGone, gone }

    /// Writes queued bytes to the local reader; returns how many were
    /// delivered and whether the reader is still there.
    func flushToLocal() -> (delivered: Int, state: Flush) {
        var delivered = 0
        while local >= 0, !toLocal.isEmpty {
            let c = toLocal[0]
            let n: Int
            if !c.fds.isEmpty {
                // Descriptors ride on the last byte of the bytes they came
                // with (the part before it goes plain; see Frame.swift).
                if c.bytes.count - c.offset > 1 {
                    n = c.bytes.withUnsafeBytes { send(local, $0.baseAddress! + c.offset, $0.count - c.offset - 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                } else {
                    n = c.bytes.withUnsafeBytes { LocalSocket.send(local, UnsafeRawBufferPointer(rebasing: $0[c.offset...]), fds: c.fds) }
                    if n > 0 { for f in c.fds { close(f) }; toLocal[0].fds = [] }
                }
            } else {
                n = c.bytes.withUnsafeBytes { send(local, $0.baseAddress! + c.offset, $0.count - c.offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            }
            if n > 0 {
                delivered += n
                toLocalBytes -= n
                toLocal[0].offset += n
                if toLocal[0].offset >= c.bytes.count { toLocal.removeFirst() }
                continue
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN { return (delivered, .blocked) }
            if e == EPIPE || e == ECONNRESET { return (delivered, .readerGone) }
            return (delivered, .gone)
        }
        return (delivered, local >= 0 ? .drained : .gone)
    }
}
