// The command line of a service call as the target's agent receives it in
// MSG_EXEC_CMDLINE (after "user:"):
//
//   QUBESRPC SERVICE[+ARG] SOURCE [TYPE TARGET] [uuid:SOURCE-UUID]
//
// TYPE TARGET is optional: the requested target, when the host passes it
// (`name dom0`, `keyword default`); without it the QREXEC_REQUESTED_TARGET*
// variables are not set. `uuid:SOURCE-UUID` (lower-case, canonical) is the
// caller's uuid, which the host adds so that a service can tell a domain
// from a later one of the same name (split-GPG remembers consent by it);
// without it QREXEC_REMOTE_DOMAIN_UUID is not set. Tokens are separated by single spaces; every name is
// checked again with the sanitisers (the host sent them, but a name reaches
// a file lookup and an environment, so it is checked where it is used).
// Nothing here goes through a shell.

public struct ServiceCommand: Equatable, Sendable {
    /// `SERVICE+ARG` exactly as requested (or `SERVICE` without '+').
    public var fullName: String
    /// The part before the first '+'.
    public var service: String
    /// The part after the first '+'; nil without '+', "" for `SERVICE+`.
    public var argument: String?
    /// The calling domain.
    public var source: String
    /// `name` or `keyword`, with the requested target (keyword without '@').
    public var requestedTarget: (type: String, target: String)?
    /// The calling domain's uuid (canonical lower-case form), when the host passed it.
    public var sourceUUID: String?

    public static let prefix = "QUBESRPC "
    /// NAME_MAX: the longest file name a lookup tries.
    public static let maxFileName = 255

    public init(fullName: String, source: String, requestedTarget: (type: String, target: String)? = nil,
                sourceUUID: String? = nil) {
        self.fullName = fullName
        if let plus = fullName.utf8.firstIndex(of: UInt8(ascii: "+")) {
            service = String(fullName.utf8[..<plus])!
            argument = String(fullName.utf8[fullName.utf8.index(after: plus)...])!
        } else {
            service = fullName
            argument = nil
        }
        self.source = source
        self.requestedTarget = requestedTarget
        self.sourceUUID = sourceUUID
    }

    public static func == (a: ServiceCommand, b: ServiceCommand) -> Bool {
        a.fullName == b.fullName && a.source == b.source && a.sourceUUID == b.sourceUUID
            && a.requestedTarget?.type == b.requestedTarget?.type && a.requestedTarget?.target == b.requestedTarget?.target
    }

    /// True if `command` (after "user:") asks for a service.
    public static func isServiceCall(_ command: [UInt8]) -> Bool {
        command.starts(with: Array(prefix.utf8))
    }

    /// Parses and checks `QUBESRPC SERVICE[+ARG] SOURCE [TYPE TARGET]`.
    public static func parse(_ untrusted_command: [UInt8]) throws(QrexecError) -> ServiceCommand {
        guard isServiceCall(untrusted_command) else { throw .badCommandLine("not a QUBESRPC command") }
        let rest = untrusted_command.dropFirst(prefix.utf8.count)
        var parts = rest.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        var sourceUUID: String?
        if parts.count == 3 || parts.count == 5, let last = parts.last, last.starts(with: Array(uuidPrefix.utf8)) {
            sourceUUID = try canonicalUUID(last.dropFirst(uuidPrefix.utf8.count))
            parts.removeLast()
        }
        guard parts.count == 2 || parts.count == 4 else {
            throw .badCommandLine("QUBESRPC takes SERVICE SOURCE [TYPE TARGET] [uuid:UUID], got \(parts.count) fields")
        }
        let name = try Names.sanitizeServiceName(parts[0])
        let service = name.utf8.prefix { $0 != UInt8(ascii: "+") }
        guard !service.isEmpty, service.count <= maxFileName else {
            throw .refusedName(field: "service name", reason: "the part before '+' is empty or longer than \(maxFileName) bytes")
        }
        guard !service.allSatisfy({ $0 == UInt8(ascii: ".") }) else {
            throw .refusedName(field: "service name", reason: "'.' and '..' are not services")
        }
        guard !parts[1].isEmpty else { throw .refusedName(field: "source", reason: "empty") }
        let source = try Names.sanitizeDomainName(parts[1], field: "source")
        var requested: (String, String)?
        if parts.count == 4 {
            let type = String(decoding: parts[2], as: UTF8.self)
            guard type == "name" || type == "keyword" else {
                throw .badCommandLine("requested target type must be 'name' or 'keyword'")
            }
            guard !parts[3].isEmpty else { throw .refusedName(field: "requested target", reason: "empty") }
            var t = try Names.sanitizeDomainName(parts[3], field: "requested target")
            if type == "keyword" && t.hasPrefix("@") { t.removeFirst() }
            requested = (type, t)
        }
        return ServiceCommand(fullName: name, source: source, requestedTarget: requested, sourceUUID: sourceUUID)
    }

    static let uuidPrefix = "uuid:"

    /// 8-4-4-4-12 lower-case hex digits, exactly: the one spelling the host
    /// writes, so a service comparing uuids as text never meets two
    /// spellings of one domain.
    static func canonicalUUID(_ untrusted: ArraySlice<UInt8>) throws(QrexecError) -> String {
        let u = Array(untrusted)
        let ok = u.count == 36 && u.enumerated().allSatisfy { i, c in
            i == 8 || i == 13 || i == 18 || i == 23 ? c == UInt8(ascii: "-")
                : (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
        }
        guard ok else { throw .refusedName(field: "source uuid", reason: "not a canonical lower-case uuid") }
        return String(decoding: u, as: UTF8.self)
    }

    /// The command line a host sends for this call (after "user:").
    public var commandLine: String {
        var s = Self.prefix + fullName + " " + source
        if let r = requestedTarget { s += " " + r.type + " " + r.target }
        if let u = sourceUUID { s += " " + Self.uuidPrefix + u }
        return s
    }

    /// File names to look for, in order: `SERVICE+ARG` (only with a '+' and
    /// at most NAME_MAX bytes), then `SERVICE`.
    public var lookupNames: [String] {
        var names: [String] = []
        if argument != nil && fullName.utf8.count <= Self.maxFileName { names.append(fullName) }
        names.append(service)
        return names
    }

    /// The first bytes a socket service reads: `"SERVICE+ARG SOURCE\0"`.
    public var socketDescriptor: [UInt8] {
        Array((fullName + " " + source).utf8) + [0]
    }

    /// The Qubes service environment (variables only; the agent adds PATH,
    /// HOME and the rest). `QREXEC_SERVICE_ARGUMENT` only with a non-empty
    /// argument, `QREXEC_REQUESTED_TARGET*` only if the host passed a target,
    /// `QREXEC_REMOTE_DOMAIN_UUID` only if it passed the caller's uuid.
    public func environment(agentPID: Int32) -> [String] {
        var env = [
            "QREXEC_REMOTE_DOMAIN=\(source)",
            "QREXEC_SERVICE_FULL_NAME=\(fullName)",
        ]
        if let u = sourceUUID { env.append("QREXEC_REMOTE_DOMAIN_UUID=\(u)") }
        if let a = argument, !a.isEmpty { env.append("QREXEC_SERVICE_ARGUMENT=\(a)") }
        if let r = requestedTarget {
            env.append("QREXEC_REQUESTED_TARGET_TYPE=\(r.type)")
            env.append(r.type == "keyword" ? "QREXEC_REQUESTED_TARGET_KEYWORD=\(r.target)" : "QREXEC_REQUESTED_TARGET=\(r.target)")
        }
        env.append("QREXEC_AGENT_PID=\(agentPID)")
        return env
    }
}
