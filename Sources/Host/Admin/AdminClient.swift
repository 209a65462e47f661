// The client side of the admin socket (used by `ody`).
#if canImport(Glibc)
import Glibc
#endif

public struct AdminClient: Sendable {
    public let socketPath: String

    public init(socketPath: String) { self.socketPath = socketPath }

    /// Sends one request and returns the content of a success reply.
    public func call(_ request: AdminRequest) throws(AdminClientError) -> [UInt8] {
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
        do { fd = try UnixSocket.connect(path: socketPath) } catch {
            throw .unreachable("cannot reach odysseyd at \(socketPath): \(error.message) (is it running? set --socket or ODYSSEY_SOCKET)")
        }
        defer { Sys.close(fd) }
        do { try Sys.writeAll(fd, AdminRequest(method: "admin.Events", dest: dest).encoded(), what: "admin request") } catch {
            throw .unreachable(error.description)
        }
        shutdown(fd, Int32(SHUT_WR))
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
