// A multiplexer of many byte streams over one reliable byte stream (see
// Frame.swift for the wire format). Each stream is presented locally as one
// end of a Unix socketpair; one thread (a poll loop) pumps between the
// transport and the local sockets, so a slow local reader only ever stops its
// own stream (per-stream credit), never the others.
//
//   host   listen(port) -> MuxListener: the host's socketpair end, WAITING
//          until the guest OPENs that port, then CONNECTED (one client per
//          listener). A descriptor the host sends with bytes on a stream
//          (SCM_RIGHTS) becomes a new stream, delivered on the other side as
//          a fresh socketpair end with the same bytes.
//   guest  dial(port) -> a connected socket (REFUSE -> MuxError.refused).
//
// Sessions resync: each side sends HELLO with a fresh nonce whenever its
// transport comes (back) up; a new peer nonce closes every stream on both
// sides (a restarted odysseyd that reconnects to QEMU's socket, or a guest
// agent that restarted, starts clean). Everything from the peer is
// untrusted: a malformed frame, an unknown stream, credit beyond the window
// or too many streams tears this session down (logged); the process goes on.
#if canImport(Glibc)
import Glibc
import CVchanSocket
#endif

public final class MuxSession: @unchecked Sendable {
    public enum Role: Sendable { case host, guest }

    public struct Limits: Sendable {
        /// Live streams at once (listeners that connected, dials, passed descriptors).
        public var maxStreams = 512
        /// Bytes queued for the transport before local sockets stop being read.
        public var transportHighWater = 1 << 20
        /// Longest pause between tries to (re)connect the transport.
        public var maxBackoffNs: Int64 = 500_000_000
        /// Pause after a protocol violation before reconnecting.
        public var violationPauseNs: Int64 = 1_000_000_000
        public init() {}
    }

    public let role: Role
    public let transport: MuxTransport
    public let limits: Limits
    let log: @Sendable (String) -> Void
    /// ODYSSEY_MUX_TRACE=1: one log line per frame each way (debugging).
    let trace = getenv("ODYSSEY_MUX_TRACE").map { String(cString: $0) == "1" } ?? false

    // Shared with API callers, under `monitor`.
    let monitor = MuxMonitor()
    var listeners: [UInt32: MuxListener] = [:]
    var dials: [UInt32: PendingDial] = [:]
    var inbox: [(UInt32, PendingDial)] = []   // dials to OPEN
    var nextLocalID: UInt32
    var stopped = false
    var kicked = false
    var exited = false
    var syncedShared = false
    var statsShared = Stats()
    let wake: (r: Int32, w: Int32)

    // Loop-thread state.
    var streams: [UInt32: MuxStream] = [:]
    var reader = FrameReader()
    var outq: [[UInt8]] = []
    var outHead = 0
    var outBytes = 0
    var tfd: Int32 = -1
    var transportIsNotSocket = false
    var announced = false
    var myNonce: UInt64 = 0
    var peerNonce: UInt64?
    var lastPeerID: UInt32 = 0
    var unsentDials: [(UInt32, PendingDial)] = []
    var nextConnectNs: Int64 = 0
    var backoffNs: Int64 = 1_000_000

    public struct Stats: Sendable, Equatable {
        public var sessions = 0        // HELLOs with a new peer nonce
        public var resets = 0          // times every stream was closed
        public var violations = 0
        public var streams = 0
        public var lastViolation: String?
    }

    final class PendingDial {
        enum Result { case accepted, refused, reset(String) }
        let port: UInt32
        let callerEnd: Int32
        let muxEnd: Int32
        var result: Result?
        init(port: UInt32, callerEnd: Int32, muxEnd: Int32) { self.port = port; self.callerEnd = callerEnd; self.muxEnd = muxEnd }
    }

    public init(role: Role, transport: MuxTransport, limits: Limits = Limits(), log: @escaping @Sendable (String) -> Void) throws(MuxError) {
        self.role = role
        self.transport = transport
        self.limits = limits
        self.log = log
        nextLocalID = role == .host ? 2 : 1
        var p: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &p) == 0 else {
            throw .sys("socketpair")
        }
        wake = (p[0], p[1])
        guard startDetachedThread({ [self] in loop() }) else {
            close(p[0]); close(p[1])
            throw .io("pthread_create for the mux of \(transport.label)", errno: EAGAIN)
        }
    }

    deinit { close(wake.r); close(wake.w) }

    public var isSynced: Bool { monitor.locked { syncedShared } }
    public var stats: Stats { monitor.locked { statsShared } }

    /// Blocks until the session is synced with its peer (or `timeoutNs`); true if synced.
    public func waitSynced(timeoutNs: Int64?) -> Bool {
        let deadline = timeoutNs.map { MuxMonitor.nowNs() + $0 }
        return monitor.locked {
            while !syncedShared && !stopped { if !monitor.wait(untilNs: deadline) { break } }
            return syncedShared
        }
    }

    /// Ends the session: every stream and waiting listener closes. `wait`:
    /// return only after the loop thread released everything.
    public func stop(wait: Bool = true) {
        monitor.locked { stopped = true }
        poke()
        if wait { monitor.locked { while !exited { _ = monitor.wait(untilNs: nil) } } }
    }

    /// The transport may have a descriptor now (a vsock connection was
    /// handed over): try it at once instead of after the backoff.
    public func transportReady() {
        monitor.locked { kicked = true }
        poke()
    }

    func poke() {
        var b: UInt8 = 1
        _ = Glibc.write(wake.w, &b, 1)
    }

    // MARK: host side

    /// A listener for the guest's OPEN of `port`.
    public func listen(port: UInt32) throws(MuxError) -> MuxListener {
        guard port >= 1 && port <= 65535 else { throw .invalid("mux listen: invalid port \(port)") }
        let (hostEnd, muxEnd) = try LocalSocket.pair()
        LocalSocket.setNonBlocking(muxEnd)
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { close(hostEnd); close(muxEnd); throw .io("mux listen: pipe", errno: errno) }
        _ = fcntl(p[0], F_SETFD, FD_CLOEXEC); _ = fcntl(p[1], F_SETFD, FD_CLOEXEC)
        let l = MuxListener(session: self, port: port, fd: p[0], wake: p[1], hostEnd: hostEnd, muxEnd: muxEnd)
        let taken: Bool = monitor.locked {
            if stopped || listeners[port] != nil { return true }
            listeners[port] = l
            return false
        }
        if taken {
            monitor.locked { l.abandonLocked() }
            close(p[0]); close(muxEnd)
            throw .invalid("mux listen: port \(port) already has a listener (or the session stopped)")
        }
        return l
    }

    /// Withdraws a listener the guest has not connected yet (its host end
    /// stays the caller's to close).
    func unlisten(_ l: MuxListener) {
        let drop: Bool = monitor.locked {
            // Connected but never looked at: the socket end the caller never
            // took must close too, or the stream would never see its EOF.
            if l.stateLocked == .connected { l.releaseUnsettledLocked(); return false }
            guard listeners[l.port] === l, l.stateLocked == .waiting else { return false }
            listeners[l.port] = nil
            l.abandonLocked()
            monitor.broadcast()
            return true
        }
        if drop { close(l.muxEnd) }
    }

    // MARK: guest side

    /// Dials `port` on the host; returns this side's connected socket
    /// (blocking mode, close-on-exec). Waits for the session to be synced
    /// (at most `timeoutNs`, nil: for ever).
    public func dial(port: UInt32, timeoutNs: Int64?) throws(MuxError) -> Int32 {
        guard port >= 1 && port <= 65535 else { throw .invalid("mux dial: invalid port \(port)") }
        let (callerEnd, muxEnd) = try LocalSocket.pair()
        LocalSocket.setNonBlocking(muxEnd)
        let d = PendingDial(port: port, callerEnd: callerEnd, muxEnd: muxEnd)
        let deadline = timeoutNs.map { MuxMonitor.nowNs() + $0 }
        let id: UInt32? = monitor.locked {
            guard !stopped, nextLocalID < UInt32.max - 2 else { return nil }
            let id = nextLocalID
            nextLocalID += 2
            dials[id] = d
            inbox.append((id, d))
            return id
        }
        guard let id else { close(callerEnd); close(muxEnd); throw .reset("the session is stopped") }
        poke()
        let r: PendingDial.Result? = monitor.locked {
            while d.result == nil && !stopped { if !monitor.wait(untilNs: deadline) { break } }
            if d.result == nil { dials[id] = nil }   // the loop closes muxEnd if it had sent OPEN
            return d.result
        }
        switch r {
        case .accepted?:
            return callerEnd
        case .refused?:
            close(callerEnd)
            throw .refused(port: port)
        case .reset(let why)?:
            close(callerEnd)
            throw .reset(why)
        case nil:
            close(callerEnd)   // the stream (if OPEN went out) sees the hangup and closes
            poke()
            throw .timeout("mux dial port \(port): no answer from the host within \((timeoutNs ?? 0) / 1_000_000) ms")
        }
    }
}

/// The host's end of one port (see MuxSession.listen).
public final class MuxListener: @unchecked Sendable {
    public enum State: Sendable, Equatable { case waiting, connected, disconnected }
    public let port: UInt32
    /// The channel's descriptor from the start (libvchan semantics, as
    /// vchan-socket's listening socket): until the guest connects it is the
    /// read end of a pipe, which becomes readable when it does; the first
    /// look at the state after that (in the caller's thread) dup3()s the
    /// host's socketpair end onto the same number. So a caller polling it
    /// wakes on the connection, not a timeout later. The swap is never made
    /// by the mux thread: a poll asleep on the pipe when its number changes
    /// would not be woken by the socket (Linux registers waiters on the
    /// first pass only); once the pipe is readable no poll sleeps on it.
    public let fd: Int32
    let muxEnd: Int32
    /// The host's socketpair end and the pipe's write end, until settled.
    private var hostEnd: Int32
    private var wake: Int32
    let session: MuxSession
    var stateLocked: State = .waiting

    init(session: MuxSession, port: UInt32, fd: Int32, wake: Int32, hostEnd: Int32, muxEnd: Int32) {
        self.session = session; self.port = port; self.fd = fd; self.wake = wake; self.hostEnd = hostEnd; self.muxEnd = muxEnd
    }

    /// The guest connected (mux thread, under the session's monitor): the
    /// pipe becomes readable.
    func connectLocked() {
        stateLocked = .connected
        var b: UInt8 = 1
        _ = Glibc.write(wake, &b, 1)
    }

    /// Connected: the socket takes the descriptor's number (caller's thread,
    /// under the monitor; once).
    private func settleLocked() {
        guard stateLocked == .connected, hostEnd >= 0 else { return }
        _ = vs_dup3_cloexec(hostEnd, fd)
        Glibc.close(hostEnd); Glibc.close(wake)
        hostEnd = -1; wake = -1
    }

    /// The caller is closing a channel it never looked at after the connect.
    func releaseUnsettledLocked() {
        if hostEnd >= 0 { Glibc.close(hostEnd); hostEnd = -1 }
        if wake >= 0 { Glibc.close(wake); wake = -1 }
    }

    /// Nobody will connect (withdrawn, session stopped): the pipe's write end
    /// closes, so a poller wakes and finds the channel disconnected.
    func abandonLocked() {
        stateLocked = .disconnected
        if hostEnd >= 0 { Glibc.close(hostEnd); hostEnd = -1 }
        if wake >= 0 { Glibc.close(wake); wake = -1 }
    }

    /// The state; once connected, `fd` is the socket from this call on.
    public var state: State { session.monitor.locked { settleLocked(); return stateLocked } }

    /// Blocks until the guest connected (true) or the listener was withdrawn,
    /// the session stopped, or `timeoutNs` passed (false).
    public func waitConnected(timeoutNs: Int64?) -> Bool {
        let deadline = timeoutNs.map { MuxMonitor.nowNs() + $0 }
        return session.monitor.locked {
            while stateLocked == .waiting && !session.stopped { if !session.monitor.wait(untilNs: deadline) { break } }
            settleLocked()
            return stateLocked == .connected
        }
    }

    /// Withdraws the listener if nobody connected yet (the caller closes `fd`).
    public func withdraw() { session.unlisten(self) }
}
