// Moves bytes between a libvchan-style channel (a ring and an event fd, as
// libxenvchan's) and one end of a local socketpair, so code written for
// stream sockets (the agent's sessions, the host's links and `ody run`'s
// descriptor) runs unchanged over such a channel.
//
// One thread per channel, never busy: it polls the channel's event fd and
// the socket, and only then moves what is ready. Reads of the channel happen
// only when data_ready says bytes are there and writes only when
// buffer_space has room, so neither blocks; asking both first also asks the
// peer to signal (libvchan's notify bits) before the pump sleeps. A readable
// event fd is consumed (pumpConsumeEvent) or poll would return at once again.
// Buffers are bounded (64 KiB each way): a peer that sends faster than the
// socket drains is simply not read until there is room.
//
// Ends (returning why) when the channel is disconnected and drained (the
// socket's write side is shut first, so its reader sees EOF), when the
// socket's last holder closed (EOF or a hang-up; a vchan has no half-close:
// the channel goes), when `wakeFD` polls readable (the owner closes), or on
// an error.
#if canImport(Glibc)
import Glibc
#endif

public enum VchanPumpState: Sendable { case waiting, connected, disconnected }

/// What the pump needs of a channel. Reads and writes are only called for
/// sizes data_ready / buffer_space reported: they must not block then.
public protocol PumpableVchan: AnyObject {
    var pumpPollFD: Int32 { get }
    func pumpConsumeEvent()
    func pumpState() -> VchanPumpState
    func pumpDataReady() -> Int
    func pumpBufferSpace() -> Int
    func pumpRead(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(VchanError) -> Int
    func pumpWrite(_ buf: UnsafeRawPointer, _ size: Int) throws(VchanError) -> Int
}

public enum VchanPump {
    public static let bufferSize = 65536

    /// Pumps until one side ends; returns why. The caller closes both.
    public static func run(_ ch: PumpableVchan, socket: Int32, wakeFD: Int32 = -1) -> String {
        let flags = fcntl(socket, F_GETFL)
        _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
        let toSocket = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        let toChannel = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { toSocket.deallocate(); toChannel.deallocate() }
        var inLen = 0, inOff = 0     // channel -> socket, bytes [inOff, inLen)
        var outLen = 0, outOff = 0   // socket -> channel
        var channelDone = false, socketShut = false
        // The socket hung up: polling it would return at once for ever, so it
        // is only read (to its EOF) while the channel takes what it sent.
        var socketHungUp = false
        // The socket's reader is gone (EPIPE) but its writer may have sent
        // its last bytes (a command's exit status, then close): those still
        // go to the channel; what the channel sends from now on is dropped.
        var socketReaderGone = false
        while true {
            let st = ch.pumpState()
            if st == .waiting {
                // The socket is watched for a hang-up only (poll reports it
                // whatever the events): its last holder gone, nobody waits.
                if socketHungUp { return "the socket side closed before the channel connected" }
                if let why = sleep(ch, socket: socket, socketEvents: 0, wakeFD: wakeFD, hungUp: &socketHungUp) { return why }
                continue
            }
            // Move whatever is ready, until nothing moves.
            var moved = true
            while moved {
                moved = false
                if !channelDone && !socketReaderGone && inLen < bufferSize {
                    let ready = ch.pumpDataReady()
                    if ready > 0 {
                        do throws(VchanError) {
                            let n = try ch.pumpRead(toSocket + inLen, min(ready, bufferSize - inLen))
                            if n > 0 { inLen += n; moved = true } else if ch.pumpState() == .disconnected { channelDone = true }
                        } catch { return "channel read: \(error)" }
                    } else if ch.pumpState() == .disconnected && ch.pumpDataReady() == 0 {
                        // In this order: the peer may write its last bytes and
                        // close between a data_ready of 0 and the state; once
                        // it is seen closed, nothing more arrives.
                        channelDone = true
                    }
                }
                if inOff < inLen {
                    let n = send(socket, toSocket + inOff, inLen - inOff, Int32(MSG_NOSIGNAL))
                    if n > 0 {
                        inOff += n; moved = true
                        if inOff == inLen { inOff = 0; inLen = 0 }
                    } else if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
                        socketReaderGone = true; inLen = 0; inOff = 0
                    } else if n < 0 && errno != EAGAIN && errno != EINTR {
                        return "socket write: \(String(cString: strerror(errno)))"
                    }
                }
                if outLen < bufferSize {
                    let n = recv(socket, toChannel + outLen, bufferSize - outLen, 0)
                    if n > 0 { outLen += n; moved = true }
                    else if n == 0 || (n < 0 && errno == ECONNRESET) {
                        // The socket side closed: deliver what it sent, then end.
                        if outOff == outLen { return "the socket side closed" }
                    } else if errno != EAGAIN && errno != EINTR {
                        return "socket read: \(String(cString: strerror(errno)))"
                    }
                }
                if outOff < outLen {
                    if ch.pumpState() == .disconnected { return "the channel's peer closed (\(outLen - outOff) bytes undelivered)" }
                    let space = ch.pumpBufferSpace()
                    if space > 0 {
                        do throws(VchanError) {
                            let n = try ch.pumpWrite(toChannel + outOff, min(space, outLen - outOff))
                            if n > 0 {
                                outOff += n; moved = true
                                if outOff == outLen { outOff = 0; outLen = 0 }
                            }
                        } catch { return "channel write: \(error)" }
                    }
                }
            }
            if channelDone && inLen == 0 {
                if !socketShut { shutdown(socket, Int32(SHUT_WR)); socketShut = true }
                return "the channel's peer closed"
            }
            var events: Int16 = 0
            if outLen < bufferSize { events |= Int16(POLLIN) }
            if inLen > 0 { events |= Int16(POLLOUT) }
            // Arm the peer's notifications before sleeping (the reads above
            // did for data; this does for room when bytes wait for it).
            if outLen > outOff { _ = ch.pumpBufferSpace() }
            if inLen < bufferSize { _ = ch.pumpDataReady() }
            // Hung up: polling the socket would return at once for ever.
            if let why = sleep(ch, socket: socketHungUp ? -1 : socket, socketEvents: events, wakeFD: wakeFD,
                               hungUp: &socketHungUp) { return why }
        }
    }

    /// Blocks in poll on the event fd, the socket (for `socketEvents`) and
    /// the wake fd; consumes the channel's event if there was one.
    private static func sleep(_ ch: PumpableVchan, socket: Int32, socketEvents: Int16, wakeFD: Int32, hungUp: inout Bool) -> String? {
        var fds = [pollfd(fd: ch.pumpPollFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: socket, events: socketEvents, revents: 0),
                   pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        let rc = poll(&fds, 3, -1)
        if rc < 0 {
            if errno == EINTR { return nil }
            return "poll: \(String(cString: strerror(errno)))"
        }
        if fds[2].revents != 0 { return "closed by its owner" }
        if fds[1].revents & Int16(POLLHUP | POLLERR) != 0 { hungUp = true }
        if fds[0].revents & Int16(POLLIN) != 0 { ch.pumpConsumeEvent() }
        if fds[0].revents & Int16(POLLNVAL | POLLERR) != 0 { return "the channel's event fd failed" }
        return nil
    }
}
