// One socket vchan end with libvchan semantics, used by the host plugin and
// linked into the agent.
//
// The fd never changes: a server starts with a listening socket, and when its
// one client connects the connection is dup3()ed onto the same fd number and
// the socket file is unlinked. So a caller may poll fd_for_poll from the
// start: it becomes readable when the client arrives (is_open/wait/read then
// complete the accept), and later when data arrives.
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket

public final class SocketChannel: @unchecked Sendable {
    /// libvchan's is_open values.
    public enum State: UInt32, Sendable { case disconnected = 0, connected = 1, waiting = 2 }

    public let fd: Int32
    public let isServer: Bool
    private let lock = PLock()
    private var state: State
    private var socketPath: String?
    private var fdClosed = false
    /// A server's check of each connecting peer (AgentGate); a refused peer
    /// is closed unanswered and the server keeps listening.
    private let admit: ((PeerCredentials?) -> Bool)?
    /// Runs once when the channel closes.
    private var onClose: (() -> Void)?

    private init(fd: Int32, isServer: Bool, state: State, socketPath: String?,
                 admit: ((PeerCredentials?) -> Bool)? = nil, onClose: (() -> Void)? = nil) {
        self.fd = fd
        self.isServer = isServer
        self.state = state
        self.socketPath = socketPath
        self.admit = admit
        self.onClose = onClose
    }

    deinit { close() }

    // MARK: setup

    static func address(_ path: String) throws(VchanError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= ChannelLayout.maxPath else { throw .invalid("socket path too long (\(bytes.count) bytes): \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        return addr
    }

    static func newSocket() throws(VchanError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .sys("socket") }
        return fd
    }

    /// Listens for one client at `path` (a stale file there is replaced).
    /// `owner`: the socket file's uid and gid (with `mode` 0600, only that
    /// uid can connect). `admit`: every connecting peer's credentials are
    /// checked before it becomes the client (see AgentGate).
    public static func listen(path: String, mode: mode_t = 0o666, owner: UInt32? = nil,
                              admit: ((PeerCredentials?) -> Bool)? = nil,
                              onClose: (() -> Void)? = nil) throws(VchanError) -> SocketChannel {
        var addr = try address(path)
        let fd = try newSocket()
        unlink(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { let e = VchanError.sys("bind \(path)"); Glibc.close(fd); throw e }
        if let owner, chown(path, owner, owner) != 0 { let e = VchanError.sys("chown \(path)"); unlink(path); Glibc.close(fd); throw e }
        if chmod(path, mode) != 0 { let e = VchanError.sys("chmod \(path)"); unlink(path); Glibc.close(fd); throw e }
        // Non-blocking listener: an accept after poll never blocks, even if
        // another thread took the connection in between.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if Glibc.listen(fd, 1) != 0 { let e = VchanError.sys("listen \(path)"); unlink(path); Glibc.close(fd); throw e }
        return SocketChannel(fd: fd, isServer: true, state: .waiting, socketPath: path, admit: admit, onClose: onClose)
    }

    /// Connects to `path`, retrying while the server is not there yet
    /// (ENOENT, ECONNREFUSED, EAGAIN) with an exponential backoff from 50 µs
    /// capped at `maxBackoffNs` (10 ms: start latency stays low), until
    /// `timeoutNs` (nil: forever).
    public static func connect(path: String, timeoutNs: Int64?, maxBackoffNs: Int64 = 10_000_000) throws(VchanError) -> SocketChannel {
        var addr = try address(path)
        let deadline = timeoutNs.map { monotonicNs() + $0 }
        var backoff: Int64 = 50_000
        while true {
            let fd = try newSocket()
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc == 0 { return SocketChannel(fd: fd, isServer: false, state: .connected, socketPath: nil) }
            let e = errno
            Glibc.close(fd)
            guard e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EINTR else { throw .io("connect \(path)", errno: e) }
            if let deadline, monotonicNs() >= deadline { throw .timeout("connect \(path): no server after \((timeoutNs ?? 0) / 1_000_000) ms") }
            var ts = timespec(tv_sec: Int(backoff / 1_000_000_000), tv_nsec: Int(backoff % 1_000_000_000))
            nanosleep(&ts, nil)
            backoff = min(backoff * 2, maxBackoffNs)
        }
    }

    /// Adopts an already connected stream socket (one passed with SCM_RIGHTS).
    public static func adopt(connectedFD fd: Int32) -> SocketChannel {
        SocketChannel(fd: fd, isServer: false, state: .connected, socketPath: nil)
    }

    public static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    // MARK: state

    /// Completes a pending accept. `block`: wait for the client.
    func ensureConnected(block: Bool) throws(VchanError) {
        while true {
            let (st, gone) = lock.locked { (state, fdClosed) }
            if gone { throw .state("channel is closed") }
            if st != .waiting { return }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, block ? -1 : 0)
            if r < 0 { if errno == EINTR { continue }; throw .sys("poll") }
            if r == 0 { return }
            var failure: VchanError?
            lock.locked {
                guard state == .waiting, !fdClosed else { return }
                let c = vs_accept_cloexec(fd)
                if c < 0 {
                    let e = errno
                    if e == EAGAIN || e == EINTR || e == ECONNABORTED { return }
                    if e == EINVAL { state = .disconnected; failure = .closed; return }   // shut down while waiting
                    failure = .io("accept", errno: e)
                    return
                }
                // Nothing is sent to a peer before it is admitted; a refused
                // one is dropped and the listener stays for the real client.
                if let admit, !admit(PeerCredentials.of(c)) { Glibc.close(c); return }
                if vs_dup3_cloexec(c, fd) < 0 { failure = .sys("dup3"); Glibc.close(c); return }
                Glibc.close(c)
                if let p = socketPath { unlink(p) }
                socketPath = nil
                state = .connected
            }
            if let failure { throw failure }
            if !block { return }
        }
    }

    /// libvchan is_open: waiting (server without client), connected, or
    /// disconnected (the peer closed and everything it sent was read).
    public func currentState() -> State {
        try? ensureConnected(block: false)
        return lock.locked {
            if fdClosed { return .disconnected }
            if state == .connected {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 0) == 1 {
                    var b: UInt8 = 0
                    let n = recv(fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { state = .disconnected }
                }
            }
            return state
        }
    }

    private func markDisconnected() { lock.locked { if state == .connected { state = .disconnected } } }

    // MARK: I/O (libvchan semantics)

    /// Partial read: blocks until at least one byte; `.closed` at EOF.
    public func read(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(VchanError) -> Int {
        if size == 0 { return 0 }
        try ensureConnected(block: true)
        while true {
            let n = Glibc.read(fd, buf, size)
            if n > 0 { return n }
            if n == 0 { markDisconnected(); throw .closed }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN { var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0); _ = poll(&p, 1, -1); continue }
            if e == ECONNRESET { markDisconnected(); throw .closed }
            throw .io("read", errno: e)
        }
    }

    /// Partial write: blocks until the socket takes at least one byte.
    public func write(_ buf: UnsafeRawPointer, _ size: Int) throws(VchanError) -> Int {
        if size == 0 { return 0 }
        try ensureConnected(block: true)
        while true {
            let n = send(fd, buf, size, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            if n > 0 { return n }
            let e = errno
            if n < 0 && (e == EAGAIN || e == EINTR) {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0); _ = poll(&p, 1, -1); continue
            }
            if e == EPIPE || e == ECONNRESET { markDisconnected(); throw .closed }
            throw .io("send", errno: e)
        }
    }

    /// All or nothing: exactly `size` bytes.
    public func recvAll(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(VchanError) {
        var got = 0
        while got < size { got += try read(buf + got, size - got) }
    }

    public func sendAll(_ buf: UnsafeRawPointer, _ size: Int) throws(VchanError) {
        var put = 0
        while put < size { put += try write(buf + put, size - put) }
    }

    /// Blocks until the peer connects, data arrives, or the peer closes (`.closed`).
    public func wait() throws(VchanError) {
        try ensureConnected(block: true)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, -1)
            if r < 0 { if errno == EINTR { continue }; throw .sys("poll") }
            if currentState() == .disconnected { throw .closed }
            return
        }
    }

    /// Bytes readable now without blocking (FIONREAD).
    public func dataReady() -> Int {
        try? ensureConnected(block: false)
        guard lock.locked({ state == .connected && !fdClosed }) else { return 0 }
        var n: Int32 = 0
        return vs_ioctl_int(fd, vs_fionread(), &n) == 0 ? Int(n) : 0
    }

    /// Bytes a write can take now without blocking: 0 unless the socket is
    /// writable, else SO_SNDBUF minus what is queued (SIOCOUTQ), at least 1.
    /// (Unix sockets account buffer overhead too, so this is an estimate; a
    /// write of that size may be partial but never blocks once writable.)
    public func bufferSpace() -> Int {
        try? ensureConnected(block: false)
        guard lock.locked({ state == .connected && !fdClosed }) else { return 0 }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 0) == 1, p.revents & Int16(POLLOUT) != 0 else { return 0 }
        var sndbuf: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len)
        var queued: Int32 = 0
        _ = vs_ioctl_int(fd, vs_siocoutq(), &queued)
        return max(Int(sndbuf) - Int(queued), 1)
    }

    /// Wakes every thread blocked on this channel (they get `.closed`) without
    /// releasing the fd number; `close` releases it.
    public func shutdownChannel() {
        lock.locked {
            guard !fdClosed else { return }
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            if let p = socketPath { unlink(p) }
            socketPath = nil
            state = .disconnected
        }
    }

    /// Closes the channel (a listening server's socket file is removed).
    /// No other thread may still be using it.
    public func close() {
        let closed: (() -> Void)? = lock.locked {
            guard !fdClosed else { return nil }
            if let p = socketPath { unlink(p) }
            socketPath = nil
            Glibc.close(fd)
            fdClosed = true
            state = .disconnected
            defer { onClose = nil }
            return onClose
        }
        closed?()
    }
}
