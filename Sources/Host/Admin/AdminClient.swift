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
