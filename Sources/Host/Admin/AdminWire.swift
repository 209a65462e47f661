// The Qubes Admin API wire format (qubesd), used on the admin socket:
//   request:  <method>[+<arg>] <source> <dest-type> <dest>\0<payload>   then EOF
//   success:  0\0<content>
//   event:    1\0<subject>\0<event>\0(<key>\0<value>\0)*\0
//   error:    2\0<ExceptionType>\0<traceback>\0<message>\0

public struct AdminRequest: Sendable, Equatable {
    public var method: String
    public var argument: String
    public var source: String
    public var destType: String
    public var dest: String
    public var payload: [UInt8]

    public init(method: String, argument: String = "", source: String = "dom0", destType: String = "name",
                dest: String = "dom0", payload: [UInt8] = []) {
        self.method = method; self.argument = argument; self.source = source
        self.destType = destType; self.dest = dest; self.payload = payload
    }

    public static let maxSize = 65536

    /// The bytes a client sends.
    public func encoded() -> [UInt8] {
        let head = method + (argument.isEmpty ? "" : "+" + argument) + " \(source) \(destType) \(dest)"
        return Array(head.utf8) + [0] + payload
    }

    /// Parses a whole request; every failure is a ProtocolError.
    public static func decode(_ untrusted: [UInt8]) throws(AdminError) -> AdminRequest {
        guard untrusted.count <= maxSize else { throw AdminError.protocolError("request larger than \(maxSize) bytes") }
        guard let nul = untrusted.firstIndex(of: 0) else { throw AdminError.protocolError("request header is not NUL-terminated") }
        guard let head = String(validating: untrusted[..<nul], as: UTF8.self) else {
            throw AdminError.protocolError("request header is not UTF-8")
        }
        let parts = head.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { throw AdminError.protocolError("request header needs 4 fields, got \(parts.count)") }
        var method = parts[0], argument = ""
        if let plus = method.firstIndex(of: "+") {
            argument = String(method[method.index(after: plus)...])
            method = String(method[..<plus])
        }
        guard !method.isEmpty, method.utf8.allSatisfy(AdminRequest.isMethodByte) else {
            throw AdminError.protocolError("invalid method name")
        }
        var destType = parts[2], dest = parts[3]
        if destType == "keyword" && dest == "adminvm" { destType = "name"; dest = "dom0" }
        return AdminRequest(method: method, argument: argument, source: parts[1], destType: destType, dest: dest,
                            payload: Array(untrusted[(nul + 1)...]))
    }

    static func isMethodByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b == 0x2e || b == 0x5f || b == 0x2d
    }
}

/// Errors on the wire carry a Qubes exception type name.
public struct AdminError: Error, Sendable, Equatable, CustomStringConvertible {
    public var type: String
    public var message: String

    public init(_ type: String, _ message: String) { self.type = type; self.message = message }

    public static func protocolError(_ m: String) -> AdminError { AdminError("ProtocolError", m) }
    public static func permissionDenied() -> AdminError { AdminError("PermissionDenied", "") }

    public var description: String { message.isEmpty ? type : "\(type): \(message)" }
}

public enum AdminResponse: Sendable, Equatable {
    case success([UInt8])
    case failure(AdminError)

    public func encoded() -> [UInt8] {
        switch self {
        case .success(let content): return Array("0".utf8) + [0] + content
        case .failure(let e):
            return Array("2".utf8) + [0] + Array(e.type.utf8) + [0] + [0] + Array(e.message.utf8) + [0]
        }
    }

    /// Parses a reply (the client side).
    public static func decode(_ b: [UInt8]) throws(AdminError) -> AdminResponse {
        guard b.count >= 2, b[1] == 0 else { throw AdminError.protocolError("malformed reply from the daemon") }
        switch b[0] {
        case UInt8(ascii: "0"): return .success(Array(b[2...]))
        case UInt8(ascii: "2"):
            let fields = b[2...].split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            guard fields.count >= 3 else { throw AdminError.protocolError("malformed error reply") }
            return .failure(AdminError(fields[0], fields[2]))
        default: throw AdminError.protocolError("unexpected reply code \(b[0])")
        }
    }
}
