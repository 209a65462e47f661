// The client side of the admin socket (used by `ody`). Inside a domain
// (agentSocket set) each request is a qrexec call instead, as Qubes' admin
// client makes in a management VM: SERVICE = method[+arg], target = dest
// (@adminvm for dom0), payload on stdin, the reply on stdout.
import Qrexec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct AdminClient: Sendable {
    public let socketPath: String
    /// The agent's local request socket, when ody runs inside a domain.
    public let agentSocket: String?

    public init(socketPath: String) { self.socketPath = socketPath; agentSocket = nil }

    /// In a domain: requests go through the agent at `agentSocket` (qrexec).
    public init(agentSocket: String) { socketPath = ""; self.agentSocket = agentSocket }

    /// Sends one request and returns the content of a success reply.
    public func call(_ request: AdminRequest) throws(AdminClientError) -> [UInt8] {
        if let agentSocket { return try Self.decodeReply(try Self.qrexecCall(request, agentSocket: agentSocket)) }
        let fd: Int32
        do { fd = try UnixSocket.connect(path: socketPath) } catch {
            throw .unreachable("cannot reach odysseyd at \(socketPath): \(error.message.components(separatedBy: ": ").last ?? error.message) (is it running? set --socket or ODYSSEY_SOCKET)")
        }
        defer { Sys.close(fd) }
        do {
            try Sys.writeAll(fd, request.encoded(), what: "admin request")
            shutdown(fd, Int32(SHUT_WR))
            let bytes = try Sys.readAll(fd, limit: 64 << 20, what: "admin reply")
            switch try AdminResponse.decode(bytes) {
            case .success(let c): return c
            case .failure(let e): throw AdminClientError.remote(e)
            }
        } catch let e as AdminClientError { throw e } catch let e as AdminError { throw .remote(e) } catch {
            throw .unreachable("\(error)")
        }
    }

    static func decodeReply(_ bytes: [UInt8]) throws(AdminClientError) -> [UInt8] {
        do {
            switch try AdminResponse.decode(bytes) {
            case .success(let c): return c
            case .failure(let e): throw AdminClientError.remote(e)
            }
        } catch let e as AdminClientError { throw e } catch let e as AdminError { throw .remote(e) } catch {
            throw .unreachable("\(error)")
        }
    }

    /// One admin request as a qrexec call through the domain's agent; the raw reply.
    /// In a domain: a streaming admin call (admin.Events) over qrexec; the
    /// returned descriptor yields the service's stdout (the event frames).
    static func qrexecStream(_ request: AdminRequest, agentSocket: String) throws(AdminClientError) -> Int32 {
        let service = request.method + (request.argument.isEmpty ? "" : "+" + request.argument)
        let target = request.dest == "dom0" || request.dest.isEmpty ? "@adminvm" : request.dest
        let channel: Int32
        switch LocalCall.open(socketPath: agentSocket, target: target, service: service) {
        case .refused: throw .remote(AdminError("PermissionDenied", "qrexec policy refused \(service) to \(target)"))
        case .failed(let why): throw .unreachable(why)
        case .channel(let c): channel = c
        }
        signal(SIGPIPE, SIG_IGN)
        var outP: [Int32] = [-1, -1]
        guard pipe(&outP) == 0 else { Sys.close(channel); throw .unreachable("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(outP[0], F_SETFD, FD_CLOEXEC); _ = fcntl(outP[1], F_SETFD, FD_CLOEXEC)
        let outW = outP[1]
        Threads.detach {
            _ = try? DataClient.run(channel: channel, stdin: nil, stdout: outW, stderr: 2)
            Sys.close(channel); Sys.close(outW)
        }
        return outP[0]
    }

    static func qrexecCall(_ request: AdminRequest, agentSocket: String) throws(AdminClientError) -> [UInt8] {
        let service = request.method + (request.argument.isEmpty ? "" : "+" + request.argument)
        let target = request.dest == "dom0" || request.dest.isEmpty ? "@adminvm" : request.dest
        let channel: Int32
        switch LocalCall.open(socketPath: agentSocket, target: target, service: service) {
        case .refused: throw .remote(AdminError("PermissionDenied", "qrexec policy refused \(service) to \(target)"))
        case .failed(let why): throw .unreachable(why)
        case .channel(let c): channel = c
        }
        signal(SIGPIPE, SIG_IGN)   // a peer that hangs up is an error, not a kill
        // The session runs on a thread of its own; this one drains its stdout
        // and stderr pipes, so nothing blocks however large the reply.
        var inP: [Int32] = [-1, -1], outP: [Int32] = [-1, -1], errP: [Int32] = [-1, -1]
        guard pipe(&inP) == 0, pipe(&outP) == 0, pipe(&errP) == 0 else {
            for f in inP + outP + errP where f >= 0 { Sys.close(f) }
            throw .unreachable("pipe: \(String(cString: strerror(errno)))")
        }
        for f in inP + outP + errP { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        let result = Mutex<Result<Int32, QrexecError>?>(nil)
        let (inR, inW, outW, errW, payload) = (inP[0], inP[1], outP[1], errP[1], request.payload)
        Threads.detach {
            Threads.detach {   // the payload may fill the pipe: written beside the session
                _ = try? Sys.writeAll(inW, payload, what: "request payload")
                Sys.close(inW)
            }
            let r: Result<Int32, QrexecError>
            do throws(QrexecError) { r = .success(try DataClient.run(channel: channel, stdin: inR, stdout: outW, stderr: errW)) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            Sys.close(channel); Sys.close(inR); Sys.close(outW); Sys.close(errW)
        }
        var out: [UInt8] = [], err: [UInt8] = []
        var fds = [pollfd(fd: outP[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errP[0], events: Int16(POLLIN), revents: 0)]
        var buf = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; break }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { Sys.close(fds[i].fd); fds[i].fd = -1; continue }
                if i == 0 { if out.count < 64 << 20 { out += buf[0..<n] } } else if err.count < 65536 { err += buf[0..<n] }
            }
        }
        for f in fds where f.fd >= 0 { Sys.close(f.fd) }
        switch result.withLock({ $0 }) {
        case .success(0)?: return out
        case .success(let status)?:
            let e = String(decoding: err, as: UTF8.self)
            throw .unreachable("qrexec call \(service) to \(target) exited \(status)\(e.isEmpty ? "" : ": " + e)")
        case .failure(let e)?: throw .unreachable("qrexec call \(service) to \(target): \(e)")
        case nil: throw .unreachable("qrexec call \(service) to \(target): no result")
        }
    }

    public func callText(_ request: AdminRequest) throws(AdminClientError) -> String {
        String(decoding: try call(request), as: UTF8.self)
    }
}

public enum AdminClientError: Error, CustomStringConvertible {
    case unreachable(String)
    case remote(AdminError)

    public var description: String {
        switch self {
        case .unreachable(let m): return m
        case .remote(let e): return e.message.isEmpty ? e.type : "\(e.message) (\(e.type))"
        }
    }
}

/// One admin.Events event as a client sees it (subject "" = the system).
public struct AdminEventMessage: Sendable, Equatable {
    public var subject: String
    public var name: String
    public var arguments: [String: String]
    public var orderedArguments: [(String, String)] { arguments.sorted { $0.key < $1.key } }
}

extension AdminClient {
    /// Follows admin.Events on `dest` (dom0: everything) until `body` returns
    /// false or the daemon closes the stream. The first event is `connection-established`.
    public func events(dest: String = "dom0", _ body: (AdminEventMessage) -> Bool) throws(AdminClientError) {
        let fd: Int32
        if let agentSocket {
            fd = try Self.qrexecStream(AdminRequest(method: "admin.Events", dest: dest), agentSocket: agentSocket)
        } else {
            do { fd = try UnixSocket.connect(path: socketPath) } catch {
                throw .unreachable("cannot reach odysseyd at \(socketPath): \(error.message) (is it running? set --socket or ODYSSEY_SOCKET)")
            }
            do { try Sys.writeAll(fd, AdminRequest(method: "admin.Events", dest: dest).encoded(), what: "admin request") } catch {
                Sys.close(fd)
                throw .unreachable(error.description)
            }
            shutdown(fd, Int32(SHUT_WR))
        }
        defer { Sys.close(fd) }
        var buf: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // Complete frames first.
            while let (consumed, frame) = AdminEventFrame.parse(buf) {
                buf.removeFirst(consumed)
                switch frame {
                case .event(let e): if !body(e) { return }
                case .error(let e): throw .remote(e)
                }
            }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            buf += chunk[0..<n]
        }
    }
}

enum AdminEventFrame {
    case event(AdminEventMessage)
    case error(AdminError)

    /// One frame at the start of `b`, with the bytes it used; nil if incomplete.
    static func parse(_ b: [UInt8]) -> (Int, AdminEventFrame)? {
        guard b.count >= 2 else { return nil }
        if b[0] == UInt8(ascii: "2") {   // an error instead of a stream: needs the 3 fields
            var fields: [String] = [], start = 2
            for i in 2..<b.count where b[i] == 0 {
                fields.append(String(decoding: b[start..<i], as: UTF8.self))
                start = i + 1
                if fields.count == 3 { return (i + 1, .error(AdminError(fields[0], fields[2]))) }
            }
            return nil
        }
        var fields: [String] = [], start = 2
        for i in 2..<b.count where b[i] == 0 {
            if i == start && fields.count >= 2 && fields.count % 2 == 0 {
                var args: [String: String] = [:]
                var j = 2
                while j + 1 < fields.count { args[fields[j]] = fields[j + 1]; j += 2 }
                return (i + 1, .event(AdminEventMessage(subject: fields[0], name: fields[1], arguments: args)))
            }
            fields.append(String(decoding: b[start..<i], as: UTF8.self))
            start = i + 1
        }
        return nil
    }
}
