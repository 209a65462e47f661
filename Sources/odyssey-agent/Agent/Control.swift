// The agent's control channel (port 512) to the host: connect, HELLO, then
// every host message through MessageRules (direction host->agent). Messages
// may carry descriptors (SCM_RIGHTS): an EXEC_CMDLINE/SERVICE_CONNECT with a
// passed socket uses it as its data channel (issue 5's direct channels).
#if canImport(Glibc)
import Glibc
#endif
import Qrexec
import VchanSocketCore

/// Writes to the current control channel from any thread (session ends send
/// MSG_CONNECTION_TERMINATED); dropped while disconnected.
final class ControlWriter: @unchecked Sendable {
    static let shared = ControlWriter()
    private let lock = PLock()
    private var fd: Int32 = -1

    func attach(_ fd: Int32) { lock.locked { self.fd = fd } }
    func detach() { lock.locked { fd = -1 } }

    func send(_ m: QrexecMessage) throws(QrexecError) {
        let bytes = m.encoded
        let r: Result<Void, QrexecError> = lock.locked {
            guard fd >= 0 else { return .failure(.closed) }
            do throws(QrexecError) { try FD.writeAll(fd, bytes); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }
}

struct AgentConfig: Sendable {
    var domain: String
    var socketDir: String
    var initMode: Bool
    /// How channels to the host are made (socket directory or a mux; Dialer.swift).
    var dialer: ChannelDialer
    /// Where services are looked up (Services.defaultDirectories).
    var rpcDirs: [String] = Services.defaultDirectories
    /// The local socket `ody-call` connects to (LocalCall.defaultSocketPath).
    var localSocket: String = LocalCall.defaultSocketPath
}

enum Control {
    /// Connects, serves until the channel ends, and reconnects: the host may
    /// restart and listen again (it re-adopts running domains).
    static func run(_ cfg: AgentConfig) -> Never {
        let path = cfg.dialer.describe(cfg.domain, port: 512)
        while true {
            let ch: SocketChannel
            do {
                // Fast for two seconds (the host listens before it starts the
                // domain, so the first try normally succeeds), then gently:
                // a host restarting may take a while to listen again.
                do { ch = try cfg.dialer.dial(domain: cfg.domain, port: 512, timeoutNs: 2_000_000_000) } catch .timeout {
                    ch = try cfg.dialer.dial(domain: cfg.domain, port: 512, timeoutNs: nil, maxBackoffNs: 200_000_000)
                }
            } catch {
                Log.say("control channel \(path): \(error); retrying")
                sleepMs(100)
                continue
            }
            Log.mark("control channel connected")
            let why = serve(ch, cfg)
            ControlWriter.shared.detach()
            ch.close()
            LocalCalls.shared.failAll(why)
            Log.say("control channel closed: \(why)")
            sleepMs(10)
        }
    }

    static func sleepMs(_ ms: Int) {
        var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
        nanosleep(&ts, nil)
    }

    /// One connection's life; returns why it ended.
    static func serve(_ ch: SocketChannel, _ cfg: AgentConfig) -> String {
        let fd = ch.fd
        ControlWriter.shared.attach(fd)
        do { try ControlWriter.shared.send(.hello(PeerInfo(version: QrexecVersion.current))) } catch { return "sending MSG_HELLO: \(error)" }
        Log.mark("MSG_HELLO sent")
        var version: UInt32?
        while true {
            var fds: [Int32] = []
            let m: QrexecMessage
            do {
                m = try receive(fd, version: &version, fds: &fds)
            } catch {
                for f in fds { close(f) }
                if error == .closed { return "the host closed it" }
                if error.isProtocolViolation { Log.say("malformed message from the host: \(error)") }
                return "\(error)"
            }
            if Log.tracing, version == nil || m.type == .hello { Log.mark("first message from the host") }
            dispatch(m, fds: fds, cfg)
        }
    }

    /// Reads one message: header (admitted before the body is read), body,
    /// and any descriptors that came with them.
    static func receive(_ fd: Int32, version: inout UInt32?, fds: inout [Int32]) throws(QrexecError) -> QrexecMessage {
        let untrusted_head: [UInt8]
        do { untrusted_head = try FDPassing.recvExact(fd, MsgHeader.size, fds: &fds) } catch { throw map(error) }
        let h = MsgHeader(untrusted_bytes: untrusted_head)
        let n = try MessageRules.admit(h, version: version, direction: .hostToAgent)
        var untrusted_body: [UInt8] = []
        if n > 0 {
            do { untrusted_body = try FDPassing.recvExact(fd, n, fds: &fds) } catch {
                throw error == .closed ? .truncated(expected: n, got: 0) : map(error)
            }
        }
        let m = try MessageRules.validate(h, untrusted_body: untrusted_body)
        if case .hello(let info) = m { version = try QrexecVersion.negotiate(untrusted_theirs: info.version) }
        return m
    }

    static func map(_ e: VchanError) -> QrexecError {
        switch e {
        case .closed: .closed
        case .io(let w, let code): .io(w, errno: code)
        default: .io("\(e)", errno: 0)
        }
    }

    static func dispatch(_ m: QrexecMessage, fds: [Int32], _ cfg: AgentConfig) {
        switch m {
        case .hello:
            for f in fds { close(f) }
        case .execCmdline(let p), .justExec(let p):
            let just: Bool
            if case .justExec = m { just = true } else { just = false }
            let passed = fds.first
            for f in fds.dropFirst() { close(f) }
            Session.start(p, justExec: just, passedFD: passed, cfg)
        case .serviceConnect(let p):
            // The caller side of a service call: the data channel comes
            // attached; LocalCalls hands it to the waiting ody-call.
            LocalCalls.shared.connected(p, fds: fds, dialer: cfg.dialer, domain: cfg.domain)
        case .serviceRefused(let s):
            for f in fds { close(f) }
            LocalCalls.shared.refused(s.ident)
        default:
            // Nothing else is admitted host->agent (MessageRules.allowed).
            for f in fds { close(f) }
        }
    }
}
