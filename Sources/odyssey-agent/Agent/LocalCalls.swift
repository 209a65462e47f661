// The caller side of service calls: `ody-call` (any user of the domain)
// connects to the agent's local socket (LocalCall.defaultSocketPath, mode
// 0666, inside the domain only) and sends one MSG_TRIGGER_SERVICE3 (see
// Sources/Qrexec/LocalCall.swift). The agent checks it with the host's own
// validator, allocates the request ident, remembers which connection waits
// for it, and forwards MSG_TRIGGER_SERVICE3 on the control channel.
//
// The host answers on the control channel with the ident:
//   MSG_SERVICE_CONNECT + one descriptor (SCM_RIGHTS): the caller's end of the
//     data channel. The agent passes it on to ody-call (SCM_RIGHTS again) with
//     the SERVICE_CONNECT and closes its own copy: the agent is not in the
//     data path. Anything else attached (no descriptor, several, not a stream
//     socket) fails that call only (ody-call exits 125); the control channel
//     and every other call carry on.
//   Over Xen (a route without descriptors): MSG_SERVICE_CONNECT naming a data
//     port the host serves; the agent dials it and passes that socket on.
//   MSG_SERVICE_REFUSED: passed on (ody-call exits 126).
// If the control channel closes, every waiting call fails (the host forgot
// them); ody-call exits 125.
//
// Idents: "call-N", N counting from 1 for the agent's life (unique among the
// domain's pending calls, within 31 bytes of [0-9A-Za-z_.- ]).
#if canImport(Glibc)
import Glibc
#endif
import Qrexec
import VchanSocketCore

final class LocalCalls: @unchecked Sendable {
    static let shared = LocalCalls()
    /// Calls waiting for the host's answer at once (the host allows 256 per
    /// domain too); beyond that a request fails at once.
    static let maxPending = 256
    /// Connections still sending their request at once.
    static let maxReading = 64
    /// A request must arrive whole within this time.
    static let requestTimeoutMs: Int32 = 5_000

    private let lock = PLock()
    private var pending: [String: Int32] = [:]   // ident -> ody-call's connection
    private var counter: UInt64 = 0
    private var reading = 0

    /// Listens on `path` and serves requests on their own threads. Returns
    /// false (logged) if the socket cannot be made: the agent works without.
    @discardableResult
    func start(path: String) -> Bool {
        makeParent(of: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { Log.say("local call socket: \(Services.errnoText(errno))"); return false }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Log.say("local call socket path too long: \(path)"); close(fd); return false
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        unlink(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, chmod(path, 0o666) == 0, listen(fd, 128) == 0 else {
            Log.say("local call socket \(path): \(Services.errnoText(errno)); ody-call will not work in this domain")
            close(fd); unlink(path)
            return false
        }
        return startThread { [self] in acceptLoop(fd) }
    }

    private func makeParent(of path: String) {
        var dir = ""
        let parts = path.split(separator: "/").dropLast()
        for p in parts {
            dir += "/" + p
            _ = mkdir(dir, 0o755)
        }
    }

    private func acceptLoop(_ listenFD: Int32) {
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { Control.sleepMs(50); continue }
                Log.say("local call socket: accept: \(Services.errnoText(errno)); no more calls from this domain")
                return
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            let admitted: Bool = lock.locked {
                guard reading < Self.maxReading else { return false }
                reading += 1
                return true
            }
            guard admitted else { reply(c, .failed("the agent is busy (\(Self.maxReading) requests being read)")); continue }
            if !startThread({ [self] in
                serveRequest(c)
                lock.locked { reading -= 1 }
            }) {
                lock.locked { reading -= 1 }
                reply(c, .failed("the agent cannot start a thread"))
            }
        }
    }

    /// Reads and checks one request, then forwards it; the connection waits
    /// in `pending` for the host's answer.
    private func serveRequest(_ c: Int32) {
        let t: TriggerService3
        do {
            let untrusted_head = try readExact(c, MsgHeader.size)
            let h = MsgHeader(untrusted_bytes: untrusted_head)
            let n = try LocalCall.admitRequest(h)
            let untrusted_body = try readExact(c, n)
            t = try LocalCall.validateRequest(h, untrusted_body: untrusted_body)
        } catch {
            return reply(c, .failed("bad request: \(error)"))
        }
        let ident: String? = lock.locked {
            if pending.count >= Self.maxPending { dropDeadCallers() }
            guard pending.count < Self.maxPending else { return nil }
            counter += 1
            let id = "call-\(counter)"
            pending[id] = c
            return id
        }
        guard let ident else { return reply(c, .failed("\(Self.maxPending) calls already wait for the host")) }
        do {
            try ControlWriter.shared.send(.triggerService3(TriggerService3(targetDomain: t.targetDomain, ident: ident,
                                                                            serviceName: t.serviceName)))
        } catch {
            if let c = take(ident) { reply(c, .failed("cannot reach the host: \(error)")) }
        }
    }

    /// Exactly `n` bytes within the request timeout.
    private func readExact(_ fd: Int32, _ n: Int) throws(QrexecError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        let deadline = monotonicNs() + Int64(Self.requestTimeoutMs) * 1_000_000
        while got < n {
            let left = Int32(max(0, (deadline - monotonicNs()) / 1_000_000))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, left)
            if r < 0 { if errno == EINTR { continue }; throw .io("poll", errno: errno) }
            if r == 0 { throw .io("request not complete within \(Self.requestTimeoutMs) ms", errno: ETIMEDOUT) }
            let k = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, Int32(MSG_DONTWAIT)) }
            if k > 0 { got += k; continue }
            if k == 0 { throw got == 0 ? .closed : .truncated(expected: n, got: got) }
            if errno == EINTR || errno == EAGAIN { continue }
            throw .io("recv", errno: errno)
        }
        return out
    }

    /// Forgets callers that went away while waiting (only under pressure).
    /// Called with the lock held.
    private func dropDeadCallers() {
        for (id, c) in pending {
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            // A caller sends nothing after its request: readable means it
            // closed (or misbehaves); either way it no longer waits.
            if poll(&p, 1, 0) > 0 && p.revents != 0 { pending[id] = nil; close(c) }
        }
    }

    private func take(_ ident: String) -> Int32? {
        lock.locked { pending.removeValue(forKey: ident) }
    }

    private func reply(_ c: Int32, _ r: LocalCall.Reply, passing fds: [Int32] = []) {
        let bytes = LocalCall.encode(r)
        if fds.isEmpty {
            _ = try? FD.writeAll(c, bytes)
        } else {
            do { try FDPassing.send(c, bytes, fds: fds) } catch { Log.say("passing the data channel to ody-call: \(error)") }
        }
        close(c)
    }

    // MARK: answers from the host (control thread)

    /// MSG_SERVICE_CONNECT with whatever descriptors came with it (all closed here).
    /// Over a route that carries no descriptors (Xen), the host names a data
    /// port instead, which is dialed here (on a thread of its own).
    func connected(_ p: ExecParams, fds: [Int32], dialer: ChannelDialer, domain: String) {
        let ident = p.cmdlineString
        defer { for f in fds { close(f) } }
        guard let c = take(ident) else {
            Log.say("MSG_SERVICE_CONNECT for \(ident), which no caller waits for; ignored")
            return
        }
        if fds.isEmpty && !dialer.carriesDescriptors {
            let ok = startThread { [self] in
                do throws(VchanError) {
                    let ch = try dialer.dial(domain: domain, port: p.connectPort, timeoutNs: 10_000_000_000)
                    reply(c, .connect(p), passing: [ch.fd])
                    ch.close()
                } catch {
                    Log.say("MSG_SERVICE_CONNECT for \(ident): the data channel on port \(p.connectPort): \(error)")
                    reply(c, .failed("the data channel the host named (port \(p.connectPort)) could not be reached: \(error)"))
                }
            }
            if !ok { reply(c, .failed("no thread for the call's data channel")) }
            return
        }
        guard fds.count == 1 else {
            Log.say("MSG_SERVICE_CONNECT for \(ident) came with \(fds.count) descriptors instead of the data channel; call failed")
            return reply(c, .failed("the host's MSG_SERVICE_CONNECT came without a usable data channel (\(fds.count) descriptors)"))
        }
        guard isStreamSocket(fds[0]) else {
            Log.say("MSG_SERVICE_CONNECT for \(ident): the descriptor is not a stream socket; call failed")
            return reply(c, .failed("the host's MSG_SERVICE_CONNECT came with a descriptor that is not a stream socket"))
        }
        reply(c, .connect(p), passing: [fds[0]])
    }

    func refused(_ ident: String) {
        guard let c = take(ident) else {
            Log.say("MSG_SERVICE_REFUSED for \(ident), which no caller waits for; ignored")
            return
        }
        reply(c, .refused(ident: ident))
    }

    /// The control channel closed: nobody will answer the waiting calls.
    func failAll(_ why: String) {
        let all: [Int32] = lock.locked {
            let v = Array(pending.values)
            pending.removeAll()
            return v
        }
        for c in all { reply(c, .failed("the control channel to the host closed (\(why))")) }
    }

    private func isStreamSocket(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue)
    }
}
