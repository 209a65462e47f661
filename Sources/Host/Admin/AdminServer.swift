// The admin socket: one request per connection (Qubes wire format), each
// connection served on its own thread so a slow client never blocks others.
// A malformed request gets a ProtocolError reply and affects nobody else.
//
// Bounded (issue 11, finding 16: 900 held calls kept 921 daemon threads):
// - the whole request must arrive within `requestDeadline` seconds (a client
//   that sends part of it and waits gets a ProtocolError and is closed);
// - at most `maxPerPeer` connections per peer uid at once (admin.Events
//   subscriptions included); the next one is refused in the accept loop,
//   without a thread, with a QubesException saying why.
//
// Who is calling: a local peer is the admin domain (dom0) when the kernel
// says (SO_PEERCRED) it is root, the daemon's own user, or a member of
// admin_socket_group; any other peer is refused. The request's source field
// is ignored and replaced by dom0: a local client cannot claim to be another
// domain (calls from domains come through qrexec with the channel's source).
import FoundationEssentials
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class AdminServer: @unchecked Sendable {
    public typealias Handler = @Sendable (AdminRequest) -> AdminResponse
    let path: String
    let logger: Logger
    let handler: Handler
    let requestDeadline: Double
    let maxPerPeer: Int
    private var listenFD: Int32 = -1
    private var allowedGID: gid_t?
    /// Open connections per peer uid.
    private let open = Mutex<[uid_t: Int]>([:])
    /// Refused connections being drained before they are closed.
    private let refusing = Mutex<[(fd: Int32, deadline: Double)]>([])
    /// Wakes the refusing thread when a connection is handed to it (or at
    /// stop); it sleeps on this while it has none.
    private let refusingAdded = Monitor()
    private let stopped = Atomic<Bool>(false)

    public static let defaultRequestDeadline = 30.0
    public static let defaultMaxPerPeer = 256

    public init(path: String, logger: Logger, requestDeadline: Double = AdminServer.defaultRequestDeadline,
                maxPerPeer: Int = AdminServer.defaultMaxPerPeer, handler: @escaping Handler) {
        self.path = path
        self.logger = logger
        self.requestDeadline = requestDeadline
        self.maxPerPeer = maxPerPeer
        self.handler = handler
    }

    /// Creates the socket (mode 0660, optional group) and starts accepting.
    public func start(group: String?) throws(OdysseyError) {
        let dir = Path.dirname(path)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw OdysseyError(.io, "cannot create \(dir): \(error)")
        }
        listenFD = try UnixSocket.listen(path: path, mode: 0o660)
        if let group {
            guard let gr = getgrnam(group) else { throw OdysseyError(.config, "admin_socket_group: no such group '\(group)'") }
            if chown(path, uid_t.max, gr.pointee.gr_gid) != 0 { throw Sys.error("chown \(path) to group \(group)") }
            allowedGID = gr.pointee.gr_gid
        }
        let fd = listenFD
        Threads.detach { [self] in acceptLoop(fd) }
        Threads.detach { [self] in refuseLoop() }
    }

    private func acceptLoop(_ fd: Int32) {
        while let conn = UnixSocket.accept(fd) {
            let peer = UnixSocket.peerCredentials(conn)
            let uid = peer?.uid ?? uid_t.max
            let admitted = open.withLock { counts -> Bool in
                guard counts[uid, default: 0] < maxPerPeer else { return false }
                counts[uid, default: 0] += 1
                return true
            }
            guard admitted else {
                logger.warning("admin socket: refused a connection from uid \(uid): \(maxPerPeer) already open")
                refuseBusy(conn)
                continue
            }
            Threads.detach { [self] in
                defer { open.withLock { counts in counts[uid, default: 1] -= 1; if counts[uid] == 0 { counts[uid] = nil } } }
                serve(conn, peer: peer)
            }
        }
    }

    /// Over the cap: the refusal is sent at once, without blocking (the socket
    /// buffer is empty), and the connection goes to the one refusing thread,
    /// which drains what the client sends until it hangs up or `drainSeconds`
    /// pass, then closes it (closing over unread data would reset the
    /// connection and lose the reply). No thread per refused connection.
    private func refuseBusy(_ fd: Int32) {
        let bytes = AdminResponse.failure(AdminError("QubesException", "too many admin connections open from this user (\(maxPerPeer)); try again")).encoded()
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        _ = shutdown(fd, Int32(SHUT_WR))
        refusingAdded.withLock {
            refusing.withLock { r in
                guard r.count < AdminServer.maxRefusing else { Sys.close(fd); return }   // a flood: just close
                r.append((fd, Sys.monotonicSeconds() + AdminServer.drainSeconds))
            }
            refusingAdded.broadcast()
        }
    }

    static let drainSeconds = 2.0
    static let maxRefusing = 1024

    private func refuseLoop() {
        var sink = [UInt8](repeating: 0, count: 16384)
        while !stopped.load(ordering: .relaxed) || !refusing.withLock({ $0.isEmpty }) {
            let list = refusing.withLock { $0 }
            if list.isEmpty {
                refusingAdded.withLock {
                    while refusing.withLock({ $0.isEmpty }) && !stopped.load(ordering: .relaxed) { _ = refusingAdded.wait(untilNs: nil) }
                }
                continue
            }
            var fds = list.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            let now = Sys.monotonicSeconds()
            var done = Set<Int32>()
            for (i, p) in fds.enumerated() {
                var finished = now >= list[i].deadline
                if p.revents != 0 {
                    let n = sink.withUnsafeMutableBytes { Glibc.recv(p.fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { finished = true }
                }
                if finished { done.insert(p.fd) }
            }
            if done.isEmpty { continue }
            refusing.withLock { $0.removeAll { done.contains($0.fd) } }
            for fd in done { Sys.close(fd) }
        }
    }

    private func serve(_ fd: Int32, peer: (pid: pid_t, uid: uid_t, gid: gid_t)?) {
        defer { Sys.close(fd) }
        let stream = AdminStream(fd: fd)
        let reply: AdminResponse
        do {
            let untrusted = try AdminServer.readRequest(fd, deadline: requestDeadline)
            // Read first (a reply over unread data would reset the connection), then decide.
            guard let peer, isAdmin(peer) else {
                logger.warning("admin socket: refused a peer that is not root, the daemon's user or in admin_socket_group")
                _ = AdminIO.sendAll(fd, AdminResponse.failure(.permissionDenied()).encoded())
                return
            }
            var request = try AdminRequest.decode(untrusted)
            request.source = "dom0"
            reply = AdminConnection.with(stream) { handler(request) }
        } catch let e as AdminError {
            logger.warning("admin socket: \(e)")
            reply = .failure(e)
        } catch {
            logger.warning("admin socket: \(error)")
            reply = .failure(.protocolError("\(error)"))
        }
        if stream.wasUsed { return }   // the handler streamed (admin.Events)
        _ = AdminIO.sendAll(fd, reply.encoded())
    }

    /// The request up to EOF, at most AdminRequest.maxSize bytes, all of it
    /// within `deadline` seconds from now (a total, not per read: a client
    /// trickling a byte at a time is cut off too).
    static func readRequest(_ fd: Int32, deadline: Double) throws(OdysseyError) -> [UInt8] {
        let end = Sys.monotonicSeconds() + deadline
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let left = end - Sys.monotonicSeconds()
            guard left > 0 else { throw OdysseyError(.protocolError, "admin request: not complete within \(deadline) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left * 1000, Double(Int32.max)).rounded(.up)))
            if ready < 0 { if errno == EINTR { continue }; throw Sys.error("admin request: poll") }
            if ready == 0 { continue }   // the deadline check above ends it
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw Sys.error("admin request: read") }
            if n == 0 { return out }
            out += chunk[0..<n]
            if out.count > AdminRequest.maxSize { throw OdysseyError(.protocolError, "admin request: more than \(AdminRequest.maxSize) bytes") }
        }
    }

    private func isAdmin(_ peer: (pid: pid_t, uid: uid_t, gid: gid_t)) -> Bool {
        if peer.uid == 0 || peer.uid == geteuid() { return true }
        guard let g = allowedGID else { return false }
        return peer.gid == g || UnixSocket.isMember(uid: peer.uid, of: g)
    }

    /// Stops accepting and removes the socket file.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        refusingAdded.withLock { refusingAdded.broadcast() }
        if listenFD >= 0 {
            shutdown(listenFD, Int32(SHUT_RDWR))
            Sys.close(listenFD)
            listenFD = -1
        }
        unlink(path)
    }
}
