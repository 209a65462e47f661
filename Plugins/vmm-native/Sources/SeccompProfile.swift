// Reads config/seccomp/native-domain.json (commented data) and turns it into
// the jailer's rule lines. Parsed once per instance, at open, so a broken
// profile fails `open` with the reason instead of every start.
import Glibc
import PluginABI

/// The JSON subset the profile uses (no Foundation in plugins).
indirect enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }
    var string: String? { if case .string(let s) = self { return s }; if case .number(let n) = self { return n }; return nil }
    var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
}

struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var p = JSONParser(bytes: bytes)
        let v = try p.value()
        p.skipSpace()
        guard p.i == bytes.count else { throw p.error("trailing characters") }
        return v
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ what: String) -> NativeError {
        var line = 1
        for b in bytes[0..<min(i, bytes.count)] where b == 10 { line += 1 }
        return NativeError(ODY_E_INVALID, "\(what) at line \(line)")
    }

    private mutating func skipSpace() {
        while i < bytes.count, [32, 9, 10, 13].contains(bytes[i]) { i += 1 }
    }

    private mutating func value() throws -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw error("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(String, JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard case .string(let k) = try value() else { throw error("expected a key") }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                members.append((k, try value()))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            i += 1
            var out: [UInt8] = []
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "u"): out.append(UInt8(ascii: "?")); i += 4 // not used by the profile
                    default: out.append(bytes[i])
                    }
                } else {
                    out.append(bytes[i])
                }
                i += 1
            }
            guard i < bytes.count else { throw error("unterminated string") }
            i += 1
            return .string(String(decoding: out, as: UTF8.self))
        case UInt8(ascii: "t") where bytes[i...].starts(with: Array("true".utf8)): i += 4; return .bool(true)
        case UInt8(ascii: "f") where bytes[i...].starts(with: Array("false".utf8)): i += 5; return .bool(false)
        case UInt8(ascii: "n") where bytes[i...].starts(with: Array("null".utf8)): i += 4; return .null
        default:
            let start = i
            while i < bytes.count, Array("+-0123456789.eExXabcdefABCDEF".utf8).contains(bytes[i]) { i += 1 }
            guard i > start else { throw error("unexpected character") }
            return .number(String(decoding: bytes[start..<i], as: UTF8.self))
        }
    }
}

/// A compiled profile: the jailer's `seccomp_default` and `seccomp` entries.
struct SeccompProfile {
    var path: String
    var defaultAction: String
    var rules: [String]

    static let actions: Set<String> = ["allow", "errno", "kill_process", "kill_thread", "trap", "log"]
    static let ops: Set<String> = ["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"]
    static let errnos: [String: Int32] = [
        "EPERM": EPERM, "ENOENT": ENOENT, "EACCES": EACCES, "EINVAL": EINVAL, "ENOSYS": ENOSYS,
        "EOPNOTSUPP": EOPNOTSUPP, "ENOTSUP": EOPNOTSUPP, "EAGAIN": EAGAIN, "EAFNOSUPPORT": EAFNOSUPPORT,
    ]

    static func load(_ path: String) throws -> SeccompProfile {
        guard let bytes = Sys.readBytes(path) else {
            throw NativeError(ODY_E_NOT_FOUND, "native: seccomp profile \(path): \(Sys.errnoName(errno))", errno: errno)
        }
        func bad(_ why: String) -> NativeError { NativeError(ODY_E_INVALID, "native: seccomp profile \(path): \(why)") }
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch let e as NativeError { throw bad(e.message) }
        let def = json["default_action"]?.string ?? "allow"
        guard actions.contains(def), def != "errno" else { throw bad("default_action \(def) is not allow/kill_process/log/trap") }
        guard let rules = json["rules"]?.array else { throw bad("missing rules[]") }
        var lines: [String] = []
        for (n, rule) in rules.enumerated() {
            guard rule["comment"]?.string?.isEmpty == false else { throw bad("rule \(n) has no comment saying why") }
            guard let action = rule["action"]?.string, actions.contains(action) else { throw bad("rule \(n): bad or missing action") }
            var errnoValue: Int32 = 0
            if action == "errno" {
                guard let name = rule["errno"]?.string, let v = errnos[name] ?? Int32(name) else {
                    throw bad("rule \(n): action errno needs an errno name (\(errnos.keys.sorted().joined(separator: " ")))")
                }
                errnoValue = v
            }
            var argText = ""
            for a in rule["args"]?.array ?? [] {
                guard let idx = a["index"]?.string, let i = Int(idx), (0...5).contains(i),
                      let op = a["op"]?.string, ops.contains(op), let value = a["value"]?.string else {
                    throw bad("rule \(n): each args[] entry needs index 0-5, op and value")
                }
                argText += "," + (try argumentFilter(index: i, op: op, value: value, mask: a["mask"]?.string,
                                                     bits: a["bits"]?.string ?? "64", rule: n, bad: bad))
            }
            guard let syscalls = rule["syscalls"]?.array, !syscalls.isEmpty else { throw bad("rule \(n): empty syscalls[]") }
            for s in syscalls {
                guard let name = s.string, !name.isEmpty, name.utf8.allSatisfy({ $0 == 95 || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }) else {
                    throw bad("rule \(n): bad syscall name")
                }
                lines.append("\(action),\(errnoValue),\(name)\(argText)")
            }
        }
        return SeccompProfile(path: path, defaultAction: def, rules: lines)
    }

    /// One jailer argument filter, "IDX:OP:VALUE[:MASK]". A 32-bit argument
    /// (`bits: 32`: an int or unsigned int in the kernel's prototype, e.g.
    /// ioctl's cmd, socket's family) is compared on its low 32 bits only:
    /// the kernel ignores the upper half of the register, so a plain 64-bit
    /// `eq` would let `TIOCSTI | 1 << 32` through. libseccomp's masked_eq
    /// with mask 0xffffffff is exactly that comparison; the other operators
    /// have no masked form, so the profile may not use them on 32-bit args.
    static func argumentFilter(index: Int, op: String, value: String, mask: String?, bits: String, rule n: Int,
                               bad: (String) -> NativeError) throws -> String {
        guard bits == "64" || bits == "32" else { throw bad("rule \(n): bits must be 32 or 64, got \(bits)") }
        guard let v = number(value) else { throw bad("rule \(n): argument value \(value) is not a number") }
        let m = try mask.map { (m: String) throws -> UInt64 in
            guard let x = number(m) else { throw bad("rule \(n): argument mask \(m) is not a number") }
            return x
        }
        if bits == "64" { return "\(index):\(op):\(v)" + (m.map { ":\($0)" } ?? "") }
        let low: UInt64 = 0xffff_ffff
        switch op {
        case "eq": return "\(index):masked_eq:\(v & low):\(low)"
        case "masked_eq": return "\(index):masked_eq:\(v & low):\((m ?? v) & low)"
        default: throw bad("rule \(n): op \(op) cannot compare a 32-bit argument (use eq or masked_eq)")
        }
    }

    /// Decimal or 0x-hexadecimal, as the profile writes numbers.
    static func number(_ s: String) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
        return UInt64(s)
    }
}
