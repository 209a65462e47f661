// The admin socket: one request per connection (Qubes wire format), each
// connection served on its own thread so a slow client never blocks others.
// A malformed request gets a ProtocolError reply and affects nobody else.
//
// Who is calling: a local peer is the admin domain (dom0) when the kernel
// says (SO_PEERCRED) it is root, the daemon's own user, or a member of
// admin_socket_group; any other peer is refused. The request's source field
// is ignored and replaced by dom0: a local client cannot claim to be another
// domain (calls from domains come through qrexec with the channel's source).
import FoundationEssentials
import Logging
#if canImport(Glibc)
import Glibc
#endif

public final class AdminServer: @unchecked Sendable {
    public typealias Handler = @Sendable (AdminRequest) -> AdminResponse
    let path: String
    let logger: Logger
    let handler: Handler
    private var listenFD: Int32 = -1
    private var allowedGID: gid_t?

    public init(path: String, logger: Logger, handler: @escaping Handler) {
        self.path = path
        self.logger = logger
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
    }

    private func acceptLoop(_ fd: Int32) {
        while let conn = UnixSocket.accept(fd) {
            Threads.detach { [self] in serve(conn) }
        }
    }

    private func serve(_ fd: Int32) {
        defer { Sys.close(fd) }
        let stream = AdminStream(fd: fd)
        let reply: AdminResponse
        do {
            let untrusted = try Sys.readAll(fd, limit: AdminRequest.maxSize, what: "admin request")
            // Read first (a reply over unread data would reset the connection), then decide.
            guard let peer = UnixSocket.peerCredentials(fd), isAdmin(peer) else {
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

    private func isAdmin(_ peer: (pid: pid_t, uid: uid_t, gid: gid_t)) -> Bool {
        if peer.uid == 0 || peer.uid == geteuid() { return true }
        guard let g = allowedGID else { return false }
        return peer.gid == g || UnixSocket.isMember(uid: peer.uid, of: g)
    }

    /// Stops accepting and removes the socket file.
    public func stop() {
        if listenFD >= 0 {
            shutdown(listenFD, Int32(SHUT_RDWR))
            Sys.close(listenFD)
            listenFD = -1
        }
        unlink(path)
    }
}
