// A channel of a vchan without fd passing (libvchan semantics: a ring and an
// event fd, as vchan-xen's) seen by the host as a Unix stream socket, like
// every fd-passing vchan's: the agent link polls and reads it, `ody run`
// receives it with SCM_RIGHTS, and nothing above VchanChannel knows the
// difference. One pump thread per channel (VchanPump: bounded buffers,
// never busy) moves bytes between the plugin's channel and a socketpair.
//
// Until the peer connects, the host polls `connectedFD` instead of the
// socket: the pump makes it readable (for good) once the channel is
// CONNECTED, so a waiter wakes at once rather than on a timeout. So a
// channel's poll fd changes once, at connection (AgentLink re-reads it).
#if canImport(Qrexec)
import Synchronization
import VchanSocketCore
#if canImport(Glibc)
import Glibc
#endif

final class VchanSocketBridge: @unchecked Sendable {
    /// The host's end of the socketpair (what VchanChannel's reads and writes use).
    let hostFD: Int32
    private let pumpFD: Int32
    /// Readable once the channel connected (a byte written, never read).
    private let connected: (r: Int32, w: Int32)
    private let phase = Mutex<VchanState>(.waiting)
    private let raw: PumpedPluginChannel

    /// Runs when the pump has ended (the channel is closed by then).
    private let onEnd: (@Sendable () -> Void)?

    /// Takes `channel` (closed by the pump when it ends) and starts the pump.
    /// `into`: pump into a copy of this stream socket (someone else holds
    /// its peer: a call's other end) instead of a new socketpair, whose host
    /// end then does not exist (hostFD -1).
    init(_ channel: VchanChannel, label: String, into socket: Int32? = nil,
         onEnd: (@Sendable () -> Void)? = nil) throws(OdysseyError) {
        var s: [Int32] = [-1, -1], c: [Int32] = [-1, -1]
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        if let socket {
            s[1] = fcntl(socket, F_DUPFD_CLOEXEC, 0)
            guard s[1] >= 0 else { throw Sys.error("\(label): dup") }
        } else {
            guard socketpair(AF_UNIX, kind, 0, &s) == 0 else { throw Sys.error("\(label): socketpair") }
        }
        guard socketpair(AF_UNIX, kind, 0, &c) == 0 else { for fd in s where fd >= 0 { Sys.close(fd) }; throw Sys.error("\(label): socketpair") }
        hostFD = s[0]; pumpFD = s[1]; connected = (c[0], c[1])
        raw = PumpedPluginChannel(channel)
        self.onEnd = onEnd
        do {
            try startThread(label) { [self] in pump() }
        } catch {
            for fd in s + c where fd >= 0 { Sys.close(fd) }
            throw error
        }
    }

    private func pump() {
        // While WAITING the pump sleeps on the event fd too (VchanPump);
        // it reports the connection through `connected`.
        raw.onConnected = { [self] in
            phase.withLock { $0 = .connected }
            var one: UInt8 = 1
            _ = Glibc.write(connected.w, &one, 1)
        }
        _ = VchanPump.run(raw, socket: pumpFD)
        phase.withLock { $0 = .disconnected }
        // Wake a waiter still on `connected`, then close the plugin's channel
        // (no other thread calls into it: only this pump ever did).
        var one: UInt8 = 1
        _ = Glibc.write(connected.w, &one, 1)
        Sys.close(pumpFD)
        raw.channel.close()
        onEnd?()
    }

    var state: VchanState { phase.withLock { $0 } }

    /// The fd to poll: `connected` until the channel connects, then the socket.
    var pollFD: Int32 { state == .waiting ? connected.r : hostFD }

    // MARK: VchanChannel's operations, on the host's socket

    func read(_ buf: UnsafeMutableRawBufferPointer, label: String) throws(OdysseyError) -> Int {
        while true {
            let n = Glibc.read(hostFD, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno != EINTR { throw Sys.error("\(label): read") }
        }
    }

    func write(_ buf: UnsafeRawBufferPointer, label: String) throws(OdysseyError) -> Int {
        while true {
            let n = Glibc.send(hostFD, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            if errno == EPIPE { throw OdysseyError(.io, "\(label): write: the channel's peer closed") }
            if errno != EINTR { throw Sys.error("\(label): write") }
        }
    }

    func recv(_ buf: UnsafeMutableRawBufferPointer, label: String) throws(OdysseyError) {
        var done = 0
        while done < buf.count {
            let n = try read(UnsafeMutableRawBufferPointer(rebasing: buf[done...]), label: label)
            if n == 0 { throw OdysseyError(.io, "\(label): recv: the peer closed after \(done) of \(buf.count) bytes") }
            done += n
        }
    }

    func send(_ buf: UnsafeRawBufferPointer, label: String) throws(OdysseyError) {
        var done = 0
        while done < buf.count { done += try write(UnsafeRawBufferPointer(rebasing: buf[done...]), label: label) }
    }

    /// Blocks until the channel connects, data arrives, or it ends.
    func wait() {
        var p = pollfd(fd: pollFD, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, -1) < 0 && errno == EINTR {}
    }

    /// Bytes readable on the socket now.
    var dataReady: Int {
        var n: Int32 = 0
        return ioctl(hostFD, UInt(FIONREAD), &n) == 0 ? Int(n) : 0
    }

    /// Room for a write without blocking: the pump's buffer size (the socket's own is larger).
    var bufferSpace: Int { state == .disconnected ? 0 : VchanPump.bufferSize }

    /// Closes the host's copy of the socket. The pump goes on while another
    /// copy lives (`ody run` received one with SCM_RIGHTS and the session
    /// was closed here): it ends, closing the plugin's channel, when the
    /// socket's last copy closes (EOF, or a hang-up while still WAITING) or
    /// the channel's peer does.
    func close() {
        if hostFD >= 0 { Sys.close(hostFD) }
    }

    /// The pump thread holds the bridge until it ends, so nothing polls these any more.
    deinit { for fd in [connected.r, connected.w] { Sys.close(fd) } }
}

/// The plugin's channel as VchanPump drives it: its own ops, never blocking
/// (reads and writes only for what data_ready / buffer_space reported).
final class PumpedPluginChannel: PumpableVchan, @unchecked Sendable {
    let channel: VchanChannel
    var onConnected: (() -> Void)?
    private var sawConnected = false
    private let eventFD: Int32

    init(_ channel: VchanChannel) {
        self.channel = channel
        eventFD = (try? channel.pollFD()) ?? -1
    }

    var pumpPollFD: Int32 { eventFD }
    // wait() returns at once when an event is pending (it was: the fd polled readable), consuming it.
    func pumpConsumeEvent() { try? channel.wait() }
    func pumpState() -> VchanPumpState {
        switch (try? channel.state()) ?? .disconnected {
        case .waiting: return .waiting
        case .connected:
            if !sawConnected { sawConnected = true; onConnected?() }
            return .connected
        case .disconnected: return .disconnected
        }
    }
    func pumpDataReady() -> Int { (try? channel.dataReady()) ?? 0 }
    func pumpBufferSpace() -> Int { (try? channel.bufferSpace()) ?? 0 }
    func pumpRead(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(VchanError) -> Int {
        do { return try channel.read(UnsafeMutableRawBufferPointer(start: buf, count: size)) } catch { throw .io(error.message, errno: EIO) }
    }
    func pumpWrite(_ buf: UnsafeRawPointer, _ size: Int) throws(VchanError) -> Int {
        do { return try channel.write(UnsafeRawBufferPointer(start: buf, count: size)) } catch { throw .io(error.message, errno: EIO) }
    }
}
#endif
