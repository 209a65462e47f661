// The admin socket: one request per connection (Qubes wire format), each
// connection served on its own thread so a slow client never blocks others.
// A malformed request gets a ProtocolError reply and affects nobody else.
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
        let reply: AdminResponse
        do {
            let untrusted = try Sys.readAll(fd, limit: AdminRequest.maxSize, what: "admin request")
            let request = try AdminRequest.decode(untrusted)
            reply = handler(request)
        } catch let e as AdminError {
            logger.warning("admin socket: \(e)")
            reply = .failure(e)
        } catch {
            logger.warning("admin socket: \(error)")
            reply = .failure(.protocolError("\(error)"))
        }
        try? Sys.writeAll(fd, reply.encoded(), what: "admin reply")
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
