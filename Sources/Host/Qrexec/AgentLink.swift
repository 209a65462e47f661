// The host's end of one domain's control channel (qrexec port 512).
//
// Life of a link:
//   init        server_init(dom0 -> domain, 512) through the vchan plugin: the
//               channel file appears in the domain's own socket directory, and
//               the plugin admits only that domain's agent (PID 1 there, as its
//               root; SO_PEERCRED, before anything is sent): whoever this link
//               talks to IS that domain (see Plugins/vchan-socket AgentGate).
//               Create the link before starting the domain, so the agent
//               finds the socket on its first try.
//   ready       the agent connected and both HELLOs crossed (version =
//               min of both, >= 3): `waitReady()` returns, `onReady` runs.
//   exec        a data port (513+), server_init of the data channel, then
//               MSG_EXEC_CMDLINE "user:command" with connect_domain 0 (dom0)
//               and that port. The caller gets an ExecSession: the data
//               channel's fd (a Unix socket it may pass to `ody run` with
//               SCM_RIGHTS, keeping the host out of the data path) or a pump.
//   messages    every agent message goes through MessageRules (one validator
//               per type, direction agent->host). A malformed one closes THIS
//               link only, logged with the reason; other domains never notice.
//   closed      the agent went away, sent garbage, or `close()` was called.
//
// One reader thread per link (it blocks on the channel); writes to the
// control channel are serialised by a mutex.
// Compiled only where the package links the Qrexec module into Host (dev
// packages of other engineers may not yet).
#if canImport(Qrexec)
import Logging
import Qrexec
import Synchronization
#if canImport(VchanSocketCore)
import VchanSocketCore
#endif
#if canImport(Glibc)
import Glibc
#endif

public final class AgentLink: @unchecked Sendable {
    public enum State: Sendable, Equatable {
        case waiting
        case ready(version: UInt32)
        case closed(reason: String)
    }

    /// A service request an agent forwarded (TRIGGER_SERVICE3/4), already
    /// validated and sanitised; `source` is the link's domain, never a field
    /// of the message.
    public struct ServiceRequest: Sendable, Equatable {
        public var source: String
        public var target: String
        public var serviceName: String
        public var ident: String

        public init(source: String, target: String, serviceName: String, ident: String) {
            self.source = source; self.target = target; self.serviceName = serviceName; self.ident = ident
        }
    }

    public static let controlPort: UInt32 = 512
    public static let firstDataPort: UInt32 = 513
    /// Data ports a domain may hold at once (pending or running sessions).
    public static let maxSessions = 1024

    public let domain: String
    public let vchan: VchanBackend
    let logger: Logger
    let control: VchanChannel
    private let onReady: (@Sendable (AgentLink) -> Void)?
    private let onClose: (@Sendable (AgentLink, String) -> Void)?
    private let onTrigger: (@Sendable (AgentLink, ServiceRequest) -> Void)?

    private let monitor = Monitor()
    private var _state: State = .waiting
    private struct PortUse { var hostOpen: Bool; var agentActive: Bool }
    private var ports: [UInt32: PortUse] = [:]
    /// true once the control channel is closed; held while writing to it.
    private let writer = Mutex<Bool>(false)
    private let wake: (r: Int32, w: Int32)
    /// Data channels the host relays into a call's socket (a vchan without
    /// fd passing: AgentLinkRelay.swift), closed with the link.
    let relays = Mutex<[UInt32: VchanChannel]>([:])

    /// Listens for `domain`'s agent on the control port and starts the link's
    /// reader thread. `onTrigger` receives validated service requests (the
    /// broker, issue 5); without it every request is refused.
    public init(domain: String, vchan: VchanBackend, logger: Logger,
                onReady: (@Sendable (AgentLink) -> Void)? = nil,
                onClose: (@Sendable (AgentLink, String) -> Void)? = nil,
                onTrigger: (@Sendable (AgentLink, ServiceRequest) -> Void)? = nil) throws(OdysseyError) {
        self.domain = domain
        self.vchan = vchan
        self.logger = logger
        self.onReady = onReady
        self.onClose = onClose
        self.onTrigger = onTrigger
        var p: [Int32] = [-1, -1]
        // A socketpair, not pipe2 (hidden behind _GNU_SOURCE): CLOEXEC atomically.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &p) == 0 else {
            throw Sys.error("socketpair for agent link \(domain)")
        }
        wake = (p[0], p[1])
        do {
            control = try vchan.serverInit(VchanEndpoint(local: Self.adminDomain, remote: domain, port: Self.controlPort), asSocket: true)
        } catch {
            Glibc.close(p[0]); Glibc.close(p[1])
            throw error
        }
        try startThread("agent link \(domain)") { [self] in readerLoop() }
    }

    /// The admin domain's name on vchan endpoints.
    public static let adminDomain = "dom0"

    public var state: State { monitor.withLock { _state } }

    /// Blocks until the agent is ready (returns the negotiated version), the
    /// link closes (throws), or `timeoutMs` passes (throws .timeout).
    @discardableResult
    public func waitReady(timeoutMs: Int? = nil) throws(OdysseyError) -> UInt32 {
        let deadline = timeoutMs.map { Monitor.nowNs() + Int64($0) * 1_000_000 }
        let s: State = monitor.withLock {
            while case .waiting = _state { if !monitor.wait(untilNs: deadline) { break } }
            return _state
        }
        switch s {
        case .ready(let v): return v
        case .closed(let why): throw OdysseyError(.state, "agent of \(domain): link closed: \(why)")
        case .waiting: throw OdysseyError(.timeout, "agent of \(domain) not ready after \(timeoutMs ?? 0) ms")
        }
    }

    /// Sleeps until the link is closed or `timeoutMs` passes; true if closed.
    @discardableResult
    public func waitClosed(timeoutMs: Int) -> Bool {
        let deadline = Monitor.nowNs() + Int64(timeoutMs) * 1_000_000
        return monitor.withLock {
            while true {
                if case .closed = _state { return true }
                if !monitor.wait(untilNs: deadline) { return false }
            }
        }
    }

    /// Sleeps until data port `port` is free again (the session ended: the
    /// agent's MSG_CONNECTION_TERMINATED), the link closes, or `timeoutMs`
    /// passes; true if the port is free or the link closed.
    @discardableResult
    public func waitPortFree(_ port: UInt32, timeoutMs: Int) -> Bool {
        let deadline = Monitor.nowNs() + Int64(timeoutMs) * 1_000_000
        return monitor.withLock {
            while true {
                if case .closed = _state { return true }
                if ports[port] == nil { return true }
                if !monitor.wait(untilNs: deadline) { return false }
            }
        }
    }

    /// "user:command" as the agent will read it, checked before it is sent.
    private func commandLine(user: String, command: String) throws(OdysseyError) -> [UInt8] {
        let cmdline = Array("\(user):\(command)".utf8)
        do {
            guard try Names.splitUserCommand(cmdline).user == user else { throw QrexecError.badCommandLine("user name contains ':'") }
        } catch { throw OdysseyError(.invalid, "\(domain): \(error)") }
        guard cmdline.count <= ExecParams.maxCmdline, !cmdline.contains(0) else {
            throw OdysseyError(.invalid, "\(domain): command line longer than \(ExecParams.maxCmdline) bytes or with a NUL byte")
        }
        return cmdline
    }

    /// Starts `command` as `user` in the domain (run by `/bin/sh -c` there).
    /// `justExec`: MSG_JUST_EXEC, stdio to /dev/null, exit code 0 once started.
    public func exec(user: String, command: String, justExec: Bool = false) throws(OdysseyError) -> ExecSession {
        guard case .ready = state else { throw OdysseyError(.state, "agent of \(domain) is not ready (\(state))") }
        let cmdline = try commandLine(user: user, command: command)
        let port = try allocatePort()
        let channel: VchanChannel
        do {
            channel = try vchan.serverInit(VchanEndpoint(local: Self.adminDomain, remote: domain, port: port), asSocket: true)
        } catch {
            releasePort(port, host: true, agent: true)
            throw error
        }
        let params = ExecParams(connectDomain: 0, connectPort: port, cmdline: cmdline)
        do {
            try send(justExec ? .justExec(params) : .execCmdline(params))
        } catch {
            channel.close()
            releasePort(port, host: true, agent: true)
            throw error
        }
        return ExecSession(link: self, port: port, channel: channel)
    }

#if canImport(VchanSocketCore)
    /// A data channel the host did not make by path (issue 5's direct
    /// channels between domains): `dataFD`, one end of a socketpair, goes to
    /// the agent with SCM_RIGHTS attached to the MSG_EXEC_CMDLINE, and the
    /// agent uses it instead of connecting. `connectDomain` is the peer's id
    /// (informational for the agent). The caller keeps (and may close) its
    /// copy of `dataFD`. Needs an fd-passing vchan. Returns the port used as
    /// the session's id (freed by the agent's MSG_CONNECTION_TERMINATED).
    @discardableResult
    public func exec(user: String, command: String, connectDomain: UInt32, passing dataFD: Int32) throws(OdysseyError) -> UInt32 {
        guard case .ready = state else { throw OdysseyError(.state, "agent of \(domain) is not ready (\(state))") }
        let cmdline = try commandLine(user: user, command: command)
        guard vchan.canPassFDs else { return try execRelayed(cmdline: cmdline, dataFD: dataFD) }
        let port = try allocatePort()
        releasePort(port, host: true)   // nothing of the host's to close: only the agent's end is pending
        let bytes = QrexecMessage.execCmdline(ExecParams(connectDomain: connectDomain, connectPort: port, cmdline: cmdline)).encoded
        let controlFD = try control.pollFD()
        let r: Result<Void, OdysseyError> = writer.withLock { closed in
            if closed { return .failure(OdysseyError(.state, "agent link of \(domain) is closed")) }
            do throws(VchanError) { try FDPassing.send(controlFD, bytes, fds: [dataFD]); return .success(()) } catch {
                return .failure(OdysseyError(.io, "\(domain): sending MSG_EXEC_CMDLINE with a descriptor: \(error)"))
            }
        }
        do { try r.get() } catch { releasePort(port, agent: true); throw error }
        return port
    }

    /// The caller's side of a call between domains (the broker, issue 5):
    /// MSG_SERVICE_CONNECT (exec_params, cmdline = the request's `ident`)
    /// with `dataFD`, the caller's end of the call's socketpair, attached.
    /// `port` is the call's id (the target's session port); no port of this
    /// link is taken. The caller keeps (and may close) its copy of `dataFD`.
    public func serviceConnect(ident: String, connectDomain: UInt32, port: UInt32, passing dataFD: Int32) throws(OdysseyError) {
        guard case .ready = state else { throw OdysseyError(.state, "agent of \(domain) is not ready (\(state))") }
        guard vchan.canPassFDs else { return try serviceConnectRelayed(ident: ident, dataFD: dataFD) }
        let bytes = QrexecMessage.serviceConnect(ExecParams(connectDomain: connectDomain, connectPort: port, cmdline: ident)).encoded
        let controlFD = try control.pollFD()
        let r: Result<Void, OdysseyError> = writer.withLock { closed in
            if closed { return .failure(OdysseyError(.state, "agent link of \(domain) is closed")) }
            do throws(VchanError) { try FDPassing.send(controlFD, bytes, fds: [dataFD]); return .success(()) } catch {
                return .failure(OdysseyError(.io, "\(domain): sending MSG_SERVICE_CONNECT with a descriptor: \(error)"))
            }
        }
        try r.get()
    }

    /// MSG_SERVICE_CONNECT with any number of descriptors attached (`[]`:
    /// none, for a vchan whose agents connect by domain and port). The
    /// socket agent accepts exactly one stream socket and fails that one call
    /// otherwise; tests use this to check that.
    public func serviceConnect(ident: String, connectDomain: UInt32, port: UInt32, passingAll fds: [Int32]) throws(OdysseyError) {
        guard case .ready = state else { throw OdysseyError(.state, "agent of \(domain) is not ready (\(state))") }
        let m = QrexecMessage.serviceConnect(ExecParams(connectDomain: connectDomain, connectPort: port, cmdline: ident))
        guard !fds.isEmpty else { return try send(m) }
        guard vchan.canPassFDs else {
            guard fds.count == 1 else { throw OdysseyError(.unsupported, "\(vchan.label) relays one descriptor per call, not \(fds.count)") }
            return try serviceConnectRelayed(ident: ident, dataFD: fds[0])
        }
        let bytes = m.encoded
        let controlFD = try control.pollFD()
        let r: Result<Void, OdysseyError> = writer.withLock { closed in
            if closed { return .failure(OdysseyError(.state, "agent link of \(domain) is closed")) }
            do throws(VchanError) { try FDPassing.send(controlFD, bytes, fds: fds); return .success(()) } catch {
                return .failure(OdysseyError(.io, "\(domain): sending MSG_SERVICE_CONNECT with descriptors: \(error)"))
            }
        }
        try r.get()
    }
#endif

    /// Runs `command` to completion with the given local fds; returns its exit status.
    public func run(user: String, command: String, stdin: Int32?, stdout: Int32, stderr: Int32,
                    connectTimeoutMs: Int32 = 10_000) throws(OdysseyError) -> Int32 {
        let s = try exec(user: user, command: command)
        defer { s.close() }
        return try s.run(stdin: stdin, stdout: stdout, stderr: stderr, connectTimeoutMs: connectTimeoutMs)
    }

    /// Refuses a service request (MSG_SERVICE_REFUSED with its ident).
    public func refuse(ident: String) throws(OdysseyError) {
        try send(.serviceRefused(ServiceParams(ident: ident)))
    }

    /// Closes the link (the agent sees its control channel close).
    public func close(reason: String = "closed by the host") {
        // Under the monitor: the reader thread closes the wake fds under it
        // too, so a late close() never writes to a reused descriptor.
        monitor.withLock {
            if case .closed = _state { return }
            if closeReason == nil { closeReason = reason }
            var b: UInt8 = 1
            _ = Glibc.write(wake.w, &b, 1)
        }
    }

    private var closeReason: String?

    // MARK: internals

    func send(_ m: QrexecMessage) throws(OdysseyError) {
        let bytes = m.encoded
        let r: Result<Void, OdysseyError> = writer.withLock { closed in
            if closed { return .failure(OdysseyError(.state, "agent link of \(domain) is closed")) }
            do throws(OdysseyError) { try control.send(bytes); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    func allocatePort() throws(OdysseyError) -> UInt32 {
        let p: UInt32? = monitor.withLock {
            guard ports.count < Self.maxSessions else { return nil }
            var port = Self.firstDataPort
            while ports[port] != nil { port += 1 }
            ports[port] = PortUse(hostOpen: true, agentActive: true)
            return port
        }
        guard let p else { throw OdysseyError(.state, "\(domain): \(Self.maxSessions) sessions already open") }
        return p
    }

    /// A port is free again once the host closed its end AND the agent said
    /// MSG_CONNECTION_TERMINATED (or the link closed): reusing it earlier
    /// could connect a late agent session to a new channel.
    func releasePort(_ port: UInt32, host: Bool = false, agent: Bool = false) {
        monitor.withLock {
            guard var u = ports[port] else { return }
            if host { u.hostOpen = false }
            if agent { u.agentActive = false }
            if !u.hostOpen && !u.agentActive { ports[port] = nil; monitor.broadcast() } else { ports[port] = u }
        }
    }

    /// Ports in use (tests, `ody` diagnostics).
    public var openPorts: [UInt32] { monitor.withLock { ports.keys.sorted() } }

    private func readerLoop() {
        let reason = serve()
        for ch in relays.withLock({ r in defer { r.removeAll() }; return Array(r.values) }) { ch.close() }
        writer.withLock { closed in
            closed = true
            control.close()
        }
        let final: String = monitor.withLock {
            Glibc.close(wake.r); Glibc.close(wake.w)
            let r = closeReason ?? reason
            _state = .closed(reason: r)
            for (p, u) in ports where !u.hostOpen { ports[p] = nil }
            for (p, var u) in ports { u.agentActive = false; ports[p] = u }
            monitor.broadcast()
            return r
        }
        logger.info("agent link of \(domain) closed: \(final)")
        onClose?(self, final)
    }

    /// Serves the channel until it ends; returns why.
    private func serve() -> String {
        var fd: Int32
        do { fd = try control.pollFD() } catch { return "\(error)" }
        var connected = false
        var reader = MessageReader(direction: .agentToHost)
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.r, events: Int16(POLLIN), revents: 0)]
            let rc = poll(&fds, 2, -1)
            if rc < 0 { if errno == EINTR { continue }; return "poll: errno \(errno)" }
            if fds[1].revents != 0 { return "closed by the host" }
            guard fds[0].revents != 0 else { continue }
            if !connected {
                let st: VchanState
                do { st = try control.state() } catch { return "\(error)" }
                if st == .waiting { continue }
                if st == .disconnected { return "the agent disconnected" }
                connected = true
                // A bridged channel (a vchan without fd passing) polls its socket from now on.
                do { fd = try control.pollFD() } catch { return "\(error)" }
                do { try send(.hello(PeerInfo(version: QrexecVersion.current))) } catch { return "sending MSG_HELLO: \(error)" }
                continue
            }
            let n: Int
            do { n = try buf.withUnsafeMutableBytes { (raw) throws(OdysseyError) in try control.read(raw) } } catch { return "\(error)" }
            if n == 0 { return "the agent closed the control channel" }
            buf.withUnsafeBytes { reader.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            do {
                while let m = try reader.next() {
                    try handle(m, version: reader.version)
                }
            } catch let e as QrexecError {
                logger.error("agent of \(domain) sent a malformed message, closing its link: \(e)")
                return "malformed message: \(e)"
            } catch {
                return "\(error)"
            }
        }
    }

    private func handle(_ m: QrexecMessage, version: UInt32?) throws {
        switch m {
        case .hello:
            let v = version ?? QrexecVersion.minimum
            monitor.withLock { _state = .ready(version: v); monitor.broadcast() }
            logger.debug("agent of \(domain) ready (qrexec protocol \(v))")
            onReady?(self)
        case .triggerService3(let t):
            dispatch(ServiceRequest(source: domain, target: t.targetDomain, serviceName: t.serviceName, ident: t.ident))
        case .triggerService4(let t):
            // t.sourceDomain is ignored: the source is the channel's domain.
            dispatch(ServiceRequest(source: domain, target: t.targetDomain, serviceName: t.serviceName, ident: t.ident))
        case .connectionTerminated(_, let port):
            releasePort(port, agent: true)
        default:
            // MessageRules admits nothing else agent->host; kept total for the compiler.
            throw QrexecError.unexpectedType(m.type, direction: .agentToHost)
        }
    }

    private func dispatch(_ r: ServiceRequest) {
        if let onTrigger { onTrigger(self, r); return }
        // No broker yet (issue 5): every request is refused.
        logger.info("\(domain): service request \(r.serviceName) to \(r.target) refused (no broker)")
        try? refuse(ident: r.ident)
    }
}

#endif
