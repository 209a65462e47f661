// A blocking qrexec stream over a file descriptor (a socket vchan, a
// socketpair, a pipe pair in tests): exact reads, whole writes, EINTR-safe,
// every incoming message admitted and validated before it is returned.
#if canImport(Glibc)
import Glibc
#endif

public struct QrexecStream: Sendable {
    public let readFD: Int32
    public let writeFD: Int32
    /// The direction of incoming messages (decides which types are admitted).
    public let incoming: Direction
    public let ours: UInt32
    /// Negotiated version, nil before the handshake.
    public var version: UInt32?

    public init(fd: Int32, incoming: Direction, ours: UInt32 = QrexecVersion.current) {
        self.init(readFD: fd, writeFD: fd, incoming: incoming, ours: ours)
    }

    public init(readFD: Int32, writeFD: Int32, incoming: Direction, ours: UInt32 = QrexecVersion.current) {
        self.readFD = readFD
        self.writeFD = writeFD
        self.incoming = incoming
        self.ours = ours
    }

    /// Sends our HELLO, reads and checks the peer's, and returns the negotiated version.
    @discardableResult
    public mutating func handshake() throws(QrexecError) -> UInt32 {
        try sendHello()
        return try receiveHello()
    }

    /// The two halves of `handshake`, for a side with work to do in between.
    public func sendHello() throws(QrexecError) { try send(.hello(PeerInfo(version: ours))) }

    public mutating func receiveHello() throws(QrexecError) -> UInt32 {
        let m = try receive()
        guard case .hello = m, let v = version else { throw .helloExpected(got: m.type) }
        return v
    }

    public func send(_ m: QrexecMessage) throws(QrexecError) {
        try FD.writeAll(writeFD, m.encoded)
    }

    /// Reads one message: the header, its admission, then exactly the admitted body.
    public mutating func receive() throws(QrexecError) -> QrexecMessage {
        let untrusted_head = try FD.readExact(readFD, MsgHeader.size, eofIsClosed: true)
        let h = MsgHeader(untrusted_bytes: untrusted_head)
        let n = try MessageRules.admit(h, version: version, direction: incoming)
        let untrusted_body = try FD.readExact(readFD, n, eofIsClosed: false)
        let m = try MessageRules.validate(h, untrusted_body: untrusted_body)
        if case .hello(let info) = m { version = try QrexecVersion.negotiate(ours: ours, untrusted_theirs: info.version) }
        return m
    }
}

/// Blocking fd helpers: EINTR retried, EAGAIN waited out with poll (so they
/// also work on a non-blocking descriptor).
public enum FD {
    public static func readExact(_ fd: Int32, _ n: Int, eofIsClosed: Bool) throws(QrexecError) -> [UInt8] {
        if n == 0 { return [] }
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, n - got) }
            if r > 0 { got += r; continue }
            if r == 0 {
                if got == 0 && eofIsClosed { throw .closed }
                throw .truncated(expected: n, got: got)
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN { waitFor(fd, Int16(POLLIN)); continue }
            if e == ECONNRESET { if got == 0 && eofIsClosed { throw .closed }; throw .truncated(expected: n, got: got) }
            throw .io("read", errno: e)
        }
        return out
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(QrexecError) {
        let r: Result<Void, QrexecError> = bytes.withUnsafeBytes { raw in
            do throws(QrexecError) { try writeAll(fd, raw); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    public static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) throws(QrexecError) {
        var off = 0
        while off < raw.count {
            let r = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
            if r >= 0 { off += r; continue }
            let e = errno
            if e == ENOTSOCK {   // a pipe or a file: plain write (SIGPIPE is ignored by our executables)
                let w = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if w >= 0 { off += w; continue }
                let e2 = errno
                if e2 == EINTR { continue }
                if e2 == EAGAIN { waitFor(fd, Int16(POLLOUT)); continue }
                if e2 == EPIPE { throw .closed }
                throw .io("write", errno: e2)
            }
            if e == EINTR { continue }
            if e == EAGAIN { waitFor(fd, Int16(POLLOUT)); continue }
            if e == EPIPE || e == ECONNRESET { throw .closed }
            throw .io("send", errno: e)
        }
    }

    static func waitFor(_ fd: Int32, _ events: Int16) {
        var p = pollfd(fd: fd, events: events, revents: 0)
        _ = poll(&p, 1, -1)
    }
}
