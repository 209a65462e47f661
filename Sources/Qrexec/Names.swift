// Name sanitising as the reference daemon does it (qrexec-policy.md §6):
// bytes outside the allowed set become '_', then length and shape rules.

public enum Names {
    /// `[A-Za-z0-9_.+-]` for service names (the '+' separates the argument).
    @inline(__always)
    static func isServiceByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
    }

    /// `[A-Za-z0-9_.@:-]` for source/target names (`@dispvm:work`).
    @inline(__always)
    static func isDomainByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "@")
            || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
    }

    /// `[0-9A-Za-z_.- ]` for request idents.
    @inline(__always)
    public static func isIdentByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: " ")
    }

    @inline(__always)
    static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
    }

    /// Service name (`SERVICE` or `SERVICE+ARG`): disallowed bytes become '_';
    /// an empty name, one starting with '+', or one over 65000 bytes is refused.
    public static func sanitizeServiceName<C: Collection>(_ untrusted: C) throws(QrexecError) -> String where C.Element == UInt8 {
        guard !untrusted.isEmpty else { throw .refusedName(field: "service name", reason: "empty") }
        guard untrusted.count <= MessageRules.maxServiceName else {
            throw .refusedName(field: "service name", reason: "longer than \(MessageRules.maxServiceName) bytes")
        }
        guard untrusted.first != UInt8(ascii: "+") else { throw .refusedName(field: "service name", reason: "starts with '+'") }
        return String(decoding: untrusted.map { isServiceByte($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
    }

    /// Source/target domain name: disallowed bytes become '_'; more than 63
    /// bytes is refused. (Empty is allowed here: it means "the default target"
    /// to the policy engine, which decides.)
    public static func sanitizeDomainName<C: Collection>(_ untrusted: C, field: String = "domain name") throws(QrexecError) -> String where C.Element == UInt8 {
        guard untrusted.count <= 63 else { throw .refusedName(field: field, reason: "longer than 63 bytes") }
        return String(decoding: untrusted.map { isDomainByte($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
    }

    /// Splits a checked EXEC_CMDLINE command line `user:command` (as the Qubes
    /// agent does: at the first ':'; the user must be non-empty and made of
    /// `[A-Za-z0-9_.-]`, the command non-empty).
    public static func splitUserCommand(_ cmdline: [UInt8]) throws(QrexecError) -> (user: String, command: [UInt8]) {
        guard let colon = cmdline.firstIndex(of: UInt8(ascii: ":")) else { throw .badCommandLine("no ':' between user and command") }
        let user = cmdline[..<colon]
        let command = Array(cmdline[(colon + 1)...])
        guard !user.isEmpty, user.count <= 32 else { throw .badCommandLine("user name empty or longer than 32 bytes") }
        guard user.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }),
              user.first != UInt8(ascii: "-") else {
            throw .badCommandLine("user name has characters outside [A-Za-z0-9_.-]")
        }
        guard !command.isEmpty else { throw .badCommandLine("empty command") }
        return (String(decoding: user, as: UTF8.self), command)
    }
}
