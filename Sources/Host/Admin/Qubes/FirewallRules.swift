// Qubes' firewall rule syntax (admin.vm.firewall.Get/Set): one rule a line,
// `key=value` options separated by single spaces, `comment=` last and taking
// the rest of the line (spaces allowed). Rules are stored and validated now;
// the network issue enforces them.
//
// What qubesd accepts, and how it answers a rule back (Get), as facts:
//   action=accept|drop (required)   proto=tcp|udp|icmp   specialtarget=dns
//   dst4=IPv4[/0-32]  dst6=IPv6[/0-128]  dsthost=IP or host name  dstname=same
//     (one of the four; a bare address gets /32 or /128; an address, in any
//     of them, answers as dst4= or dst6=, a name as dsthost=)
//   dstports=N or N-M (0-65535, N<=M; tcp/udp only; answered as N-M)
//   icmptype=0-255 (icmp only)   expire=UNIX-TIME (an expired rule is not answered)
//   comment=TEXT (letters, digits, space and :;,./-_[])
// Answered in qubesd's order: action expire dst* proto specialtarget dstports icmptype comment.
// Lines and spaces are split and stripped as Python does (qubesd's
// splitlines() and strip()). Stricter than qubesd on purpose: numbers are
// plain ASCII digits (Python's int() also takes "+80" or "8_0"), a host name
// is not empty, at most maxRules rules. FirewallOracleTests measures the
// agreement with qubesd's own parser.
#if canImport(Glibc)
import Glibc
#endif

struct FirewallRule: Sendable, Equatable {
    enum Destination: Sendable, Equatable { case ipv4(String), ipv6(String), host(String) }

    var action: String
    var expire: Int64?
    var destination: Destination?
    var proto: String?
    var specialTarget: String?
    var ports: ClosedRange<Int>?
    var icmpType: Int?
    var comment: String?

    /// Qubes' default for a domain that never had rules: everything allowed.
    static let defaultRules = [FirewallRule(action: "accept")]
    static let maxRules = 4096

    /// The rule as qubesd answers it in admin.vm.firewall.Get.
    var apiText: String {
        var parts = ["action=\(action)"]
        if let e = expire { parts.append("expire=\(e)") }
        switch destination {
        case .ipv4(let v): parts.append("dst4=\(v)")
        case .ipv6(let v): parts.append("dst6=\(v)")
        case .host(let v): parts.append("dsthost=\(v)")
        case nil: break
        }
        if let p = proto { parts.append("proto=\(p)") }
        if let s = specialTarget { parts.append("specialtarget=\(s)") }
        if let r = ports { parts.append("dstports=\(r.lowerBound)-\(r.upperBound)") }
        if let t = icmpType { parts.append("icmptype=\(t)") }
        if let c = comment { parts.append("comment=\(c)") }
        return parts.joined(separator: " ")
    }

    func expired(now: Int64) -> Bool { expire.map { $0 < now } ?? false }

    /// A whole admin.vm.firewall.Set payload (ASCII lines); every failure is a QubesValueError naming the line.
    static func parseRules(_ untrusted: [UInt8]) throws(AdminError) -> [FirewallRule] {
        guard untrusted.allSatisfy({ $0 < 0x80 }) else { throw .protocolError("Rules contains non-ASCII characters") }
        let text = String(decoding: untrusted, as: UTF8.self)
        let lines = pythonLines(text)
        guard lines.count <= maxRules else { throw .value("Too many firewall rules: \(lines.count) (at most \(maxRules))") }
        var rules: [FirewallRule] = []
        for (i, line) in lines.enumerated() {
            do throws(FirewallRuleError) { rules.append(try parse(String(line))) } catch {
                throw .value("Invalid firewall rule on line \(i + 1): \(error.reason)")
            }
        }
        return rules
    }

    struct FirewallRuleError: Error { let reason: String }

    /// One line, as qubesd's Rule.from_api_string reads it.
    static func parse(_ untrusted: String) throws(FirewallRuleError) -> FirewallRule {
        func fail(_ r: String) -> FirewallRuleError { FirewallRuleError(reason: r) }
        // The first `comment=` anywhere starts the comment (as str.partition does).
        let bytes = Array(untrusted.utf8), marker = Array("comment=".utf8)
        var options = untrusted, comment: String? = nil
        if let at = bytes.indices.first(where: { bytes[$0...].starts(with: marker) }) {
            options = String(decoding: bytes[..<at], as: UTF8.self)
            let c = String(decoding: bytes[(at + marker.count)...], as: UTF8.self)
            if !c.isEmpty {
                guard c.utf8.allSatisfy({ isSafe($0) || $0 == 0x20 }) else { throw fail("strange characters in comment") }
                comment = c
            }
        }
        var seen: Set<String> = []
        var rule = FirewallRule(action: "", comment: comment)
        for option in pythonStrip(options).split(separator: " ", omittingEmptySubsequences: false) {
            guard let eq = option.firstIndex(of: "=") else { throw fail("option '\(QubesAPI.shown(String(option)))' is not key=value") }
            let key = String(option[..<eq]), value = String(option[option.index(after: eq)...])
            let slot = ["dst4", "dst6", "dstname", "dsthost"].contains(key) ? "dsthost" : key
            guard seen.insert(slot).inserted else { throw fail("Option '\(QubesAPI.shown(slot))' already set") }
            guard value.utf8.allSatisfy(isSafe) else { throw fail("strange characters in rule") }
            switch key {
            case "action":
                guard value == "accept" || value == "drop" else { throw fail("action must be accept or drop, not '\(QubesAPI.shown(value))'") }
                rule.action = value
            case "proto":
                guard ["tcp", "udp", "icmp"].contains(value) else { throw fail("proto must be tcp, udp or icmp, not '\(QubesAPI.shown(value))'") }
                rule.proto = value
            case "specialtarget":
                guard value == "dns" else { throw fail("specialtarget must be dns, not '\(QubesAPI.shown(value))'") }
                rule.specialTarget = value
            case "dst4", "dst6", "dstname", "dsthost": rule.destination = try destination(value)
            case "dstports": rule.ports = try ports(value)
            case "icmptype":
                guard let n = number(value, maxDigits: 3, max: 255) else { throw fail("bad ICMP type '\(QubesAPI.shown(value))' (0-255)") }
                rule.icmpType = n
            case "expire":
                guard let n = number(value, max: maxExpire) else { throw fail("bad expiration time '\(QubesAPI.shown(value))' (UNIX time)") }
                rule.expire = Int64(n)
            default: throw fail("Unknown firewall option '\(QubesAPI.shown(key))'")
            }
        }
        guard !rule.action.isEmpty else { throw fail("a rule needs action=accept or action=drop") }
        if rule.ports != nil, rule.proto != "tcp" && rule.proto != "udp" {
            throw fail("dstports valid only for 'tcp' and 'udp' protocols")
        }
        if rule.icmpType != nil, rule.proto != "icmp" { throw fail("icmptype valid only for 'icmp' protocol") }
        return rule

        func ports(_ v: String) throws(FirewallRuleError) -> ClosedRange<Int> {
            let ends = v.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2, let lo = number(String(ends[0]), max: 65535),
                  let hi = ends.count == 2 ? number(String(ends[1]), max: 65535) : lo else {
                throw fail("bad dstports '\(QubesAPI.shown(v))' (N or N-M)")
            }
            guard lo < 65536, hi < 65536 else { throw fail("Ports out of range") }
            guard lo <= hi else { throw fail("Invalid port range") }
            return lo...hi
        }

        func destination(_ v: String) throws(FirewallRuleError) -> Destination {
            let pieces = v.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw fail("Too many /: \(QubesAPI.shown(v))") }
            let host = String(pieces[0])
            if pieces.count == 2 {
                guard let len = number(String(pieces[1]), max: 1000) else { throw fail("bad prefix length") }
                if isAddress(host, AF_INET6) {
                    guard len <= 128 else { throw fail("netmask for IPv6 must be <= 128") }
                    return .ipv6(v)
                }
                guard isAddress(host, AF_INET) else { throw fail("Invalid IP address: \(QubesAPI.shown(host))") }
                guard len <= 32 else { throw fail("netmask for IPv4 must be <= 32") }
                return .ipv4(v)
            }
            if isAddress(host, AF_INET6) { return .ipv6(host + "/128") }
            if isAddress(host, AF_INET) { return .ipv4(host + "/32") }
            guard !host.isEmpty, host.utf8.allSatisfy({ isLowerHostByte($0) }) else { throw fail("Invalid hostname") }
            return .host(host)
        }
    }

    /// The last expiry Python's datetime can hold (9999-12-31 23:59:59 UTC); qubesd refuses later ones.
    static let maxExpire = 253_402_300_799

    /// ASCII digits only (leading zeros allowed, as int() takes them), at most
    /// `maxDigits` of them, the value at most `max`; nil otherwise.
    private static func number(_ s: String, maxDigits: Int = .max, max: Int) -> Int? {
        guard !s.isEmpty, s.utf8.count <= maxDigits, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        var n = 0
        for b in s.utf8 {
            n = n * 10 + Int(b - 0x30)
            if n > max { return nil }
        }
        return n
    }

    /// Python's str.splitlines() on ASCII: \n, \r\n, \r, \v, \f and \x1c-\x1e end a line; a last empty line is none.
    static func pythonLines(_ text: String) -> [Substring] {
        var out: [Substring] = []
        let u = text.utf8
        var start = u.startIndex, i = u.startIndex
        while i < u.endIndex {
            let b = u[i]
            if b == 0x0a || b == 0x0d || b == 0x0b || b == 0x0c || (b >= 0x1c && b <= 0x1e) {
                out.append(Substring(text[start..<i]))
                var next = u.index(after: i)
                if b == 0x0d, next < u.endIndex, u[next] == 0x0a { next = u.index(after: next) }
                start = next; i = next
            } else {
                i = u.index(after: i)
            }
        }
        if start < u.endIndex { out.append(Substring(text[start...])) }
        return out
    }

    /// Python's str.strip() on ASCII: space, \t-\r and \x1c-\x1f.
    static func pythonStrip(_ s: String) -> Substring {
        let isSpace = { (c: Character) in c.asciiValue.map { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0d) || ($0 >= 0x1c && $0 <= 0x1f) } ?? false }
        var t = Substring(s)
        while let f = t.first, isSpace(f) { t = t.dropFirst() }
        while let l = t.last, isSpace(l) { t = t.dropLast() }
        return t
    }

    /// Letters, digits and :;,./-_[] (qubesd's safe set for option values).
    private static func isSafe(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || Array(":;,./-_[]".utf8).contains(b)
    }

    private static func isLowerHostByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x2e || b == 0x5f
    }

    /// inet_pton's answer (IPv4 also needs its three dots, as qubesd checks).
    private static func isAddress(_ s: String, _ family: Int32) -> Bool {
        var buf = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, s, &buf) == 1 else { return false }
        return family != AF_INET || s.utf8.filter { $0 == 0x2e }.count == 3
    }
}
