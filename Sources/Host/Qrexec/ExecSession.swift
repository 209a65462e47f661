// One command started by AgentLink.exec: its data channel, whose server end
// the host holds. Either hand the channel's fd to a client (`ody run`, after
// `waitConnected()`, with SCM_RIGHTS) and close the session, or let `run`
// pump it here.
// Compiled only where the package links the Qrexec module into Host (dev
// packages of other engineers may not yet).
#if canImport(Qrexec)
import Qrexec
#if canImport(Glibc)
import Glibc
#endif

public final class ExecSession: @unchecked Sendable {
    public let domain: String
    public let port: UInt32
    public let channel: VchanChannel
    private let link: AgentLink
    private var closed = false

    init(link: AgentLink, port: UInt32, channel: VchanChannel) {
        self.link = link
        self.domain = link.domain
        self.port = port
        self.channel = channel
    }

    deinit { close() }

    /// The data channel's descriptor. With an fd-passing vchan (socket) it is
    /// the Unix stream socket to the agent once `waitConnected` returned.
    public func dataFD() throws(OdysseyError) -> Int32 { try channel.pollFD() }

    /// Waits until the agent connected the data channel.
    public func waitConnected(timeoutMs: Int32 = 10_000) throws(OdysseyError) {
        let fd = try channel.pollFD()
        let deadline = Monitor.nowNs() + Int64(timeoutMs) * 1_000_000
        while true {
            switch try channel.state() {
            case .connected: return
            case .disconnected: throw OdysseyError(.io, "\(domain): data channel \(port) closed before the agent connected")
            case .waiting: break
            }
            let left = (deadline - Monitor.nowNs()) / 1_000_000
            if left <= 0 { throw OdysseyError(.timeout, "\(domain): the agent did not connect data channel \(port) within \(timeoutMs) ms") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(min(left, 1000)))
        }
    }

    /// Pumps the session as the caller: HELLO, `stdin` (nil: EOF at once) to
    /// the command, its stdout/stderr to the fds, until its exit status, which
    /// is returned. Needs a channel seen as a stream socket (fd passing, or bridged).
    public func run(stdin: Int32?, stdout: Int32, stderr: Int32, connectTimeoutMs: Int32 = 10_000) throws(OdysseyError) -> Int32 {
        guard channel.isSocket else {
            throw OdysseyError(.unsupported, "\(link.vchan.label): pumping a session needs a vchan whose channels are sockets (fd-passing)")
        }
        try waitConnected(timeoutMs: connectTimeoutMs)
        let fd = try channel.pollFD()
        do {
            return try DataClient.run(channel: fd, stdin: stdin, stdout: stdout, stderr: stderr)
        } catch .closed {
            throw OdysseyError(.io, "\(domain): data channel \(port) closed before the exit code")
        } catch {
            throw OdysseyError(error.isProtocolViolation ? .protocolError : .io, "\(domain): data channel \(port): \(error)")
        }
    }

    /// Closes the host's end (idempotent). The port is reused only after the
    /// agent also reported the session over.
    public func close() {
        guard !closed else { return }
        closed = true
        channel.close()
        link.releasePort(port, host: true)
    }
}

#endif
