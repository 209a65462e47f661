// The one error type of the host: what failed, in words a user can act on,
// with the context (file, key, plugin, syscall) and the underlying cause.

public struct OdysseyError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        case config            // bad or missing configuration
        case plugin            // a plugin was refused or misbehaved
        case unsupported       // a backend lacks the operation (NULL slot)
        case backend           // a backend call failed
        case notFound
        case exists
        case state             // wrong state for the operation
        case invalid           // bad argument
        case permission
        case io                // a syscall failed
        case protocolError     // malformed wire message
        case timeout
        case limit             // a configured resource limit ([limits]) refused it
    }

    public var code: Code
    public var message: String
    /// Backend or errno detail ("libvirt error 42", "errno 2"), if any.
    public var cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause, !cause.isEmpty { return "\(message) (\(cause))" }
        return message
    }
}

extension OdysseyError {
    /// Runs `body` and re-types what it throws: stdlib helpers such as
    /// withCString only rethrow `any Error`, even around typed-throwing code.
    @discardableResult
    static func rethrowing<T>(_ body: () throws -> T) throws(OdysseyError) -> T {
        do { return try body() } catch let e as OdysseyError { throw e } catch {
            throw OdysseyError(.io, "\(error)")
        }
    }
}
