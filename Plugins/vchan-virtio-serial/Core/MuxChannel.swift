// One host channel end of a multiplexed vchan, with libvchan semantics (the
// same as vchan-socket's SocketChannel): its descriptor is the host's
// socketpair end from server_init on, WAITING until the guest OPENs the
// port, then CONNECTED, DISCONNECTED once the guest closed and everything it
// sent was read (or the session reset). Since it is an ordinary Unix stream
// socket, the host may pass descriptors on it (the mux carries them).
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket
import StreamMux

public final class MuxChannel: @unchecked Sendable {
    public enum State: UInt32, Sendable { case disconnected = 0, connected = 1, waiting = 2 }
    public enum Failure: Error, Equatable { case closed, io(String, errno: Int32) }

    public let listener: MuxListener
    public var fd: Int32 { listener.fd }
    private let onClose: () -> Void
    private var closed = false
    private var sawEOF = false

    public init(listener: MuxListener, onClose: @escaping () -> Void) {
        self.listener = listener
        self.onClose = onClose
    }

    public func currentState() -> State {
        if closed || sawEOF { return .disconnected }
        switch listener.state {
        case .waiting: return .waiting
        case .disconnected: return .disconnected
        case .connected:
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) == 1 {
                var b: UInt8 = 0
                let n = recv(fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { sawEOF = true; return .disconnected }
            }
            return .connected
        }
    }

    /// Blocks until the guest connected; .closed if it never will.
    private func ensureConnected() throws(Failure) {
        if listener.state == .waiting { _ = listener.waitConnected(timeoutNs: nil) }
        if listener.state != .connected { throw .closed }
    }

    public func read(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(Failure) -> Int {
        if size == 0 { return 0 }
        try ensureConnected()
        while true {
            let n = Glibc.read(fd, buf, size)
            if n > 0 { return n }
            if n == 0 { sawEOF = true; throw .closed }
            if errno == EINTR { continue }
            if errno == ECONNRESET { sawEOF = true; throw .closed }
            throw .io("read", errno: errno)
        }
    }

    public func write(_ buf: UnsafeRawPointer, _ size: Int) throws(Failure) -> Int {
        if size == 0 { return 0 }
        try ensureConnected()
        while true {
            let n = send(fd, buf, size, Int32(MSG_NOSIGNAL))
            if n > 0 { return n }
            if errno == EINTR { continue }
            if errno == EPIPE || errno == ECONNRESET { throw .closed }
            throw .io("send", errno: errno)
        }
    }

    public func recvAll(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(Failure) {
        var got = 0
        while got < size { got += try read(buf + got, size - got) }
    }

    public func sendAll(_ buf: UnsafeRawPointer, _ size: Int) throws(Failure) {
        var put = 0
        while put < size { put += try write(buf + put, size - put) }
    }

    /// Until the guest connects, data arrives, or the guest closes (.closed).
    public func wait() throws(Failure) {
        if listener.state == .waiting {
            _ = listener.waitConnected(timeoutNs: nil)
            if listener.state == .connected { return }
            throw .closed
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, -1) < 0 && errno == EINTR {}
        if currentState() == .disconnected { throw .closed }
    }

    public func dataReady() -> Int {
        guard currentState() == .connected else { return 0 }
        var n: Int32 = 0
        return vs_ioctl_int(fd, vs_fionread(), &n) == 0 ? Int(n) : 0
    }

    public func bufferSpace() -> Int {
        guard currentState() == .connected else { return 0 }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 0) == 1, p.revents & Int16(POLLOUT) != 0 else { return 0 }
        var sndbuf: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len)
        var queued: Int32 = 0
        _ = vs_ioctl_int(fd, vs_siocoutq(), &queued)
        return max(Int(sndbuf) - Int(queued), 1)
    }

    /// Closes the host's end (the guest sees the stream end); idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        listener.withdraw()
        Glibc.close(fd)
        onClose()
    }
}
