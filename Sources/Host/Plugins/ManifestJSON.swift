// A strict reader for the small JSON of plugin manifests. Why not
// JSONDecoder: its first use in a process costs ~0.5 ms of generic Codable
// setup, most of the 1 ms a plugin load may take. Manifests are tiny and
// their schema fixed, so a direct reader is both faster and gives better
// errors ("factories[0].kind: expected a string").

enum ManifestJSON: Equatable {
    case string(String), number(Double), bool(Bool), null
    case array([ManifestJSON]), object([(String, ManifestJSON)])

    static func == (a: ManifestJSON, b: ManifestJSON) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    subscript(key: String) -> ManifestJSON? {
        if case .object(let members) = self { return members.last { $0.0 == key }?.1 }
        return nil
    }

    struct Failure: Error { let message: String }

    static func parse(_ bytes: [UInt8]) throws(Failure) -> ManifestJSON {
        var p = Reader(b: bytes)
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw Failure(message: "unexpected text after the JSON value at byte \(p.i)") }
        return v
    }

    private struct Reader {
        let b: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 } }
        func fail(_ m: String) -> Failure { Failure(message: "\(m) at byte \(i)") }

        mutating func value(depth: Int) throws(Failure) -> ManifestJSON {
            guard depth < 32 else { throw fail("nesting too deep") }
            skipSpace()
            guard i < b.count else { throw fail("unexpected end") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, ManifestJSON)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let k = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    members.append((k, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw fail("unexpected end") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard b[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                    i += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [ManifestJSON] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw fail("unexpected end") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard b[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                    i += 1
                    return .array(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                let start = i
                while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || b[i] == 0x2d || b[i] == 0x2b || b[i] == 0x2e || b[i] == 0x65 || b[i] == 0x45 { i += 1 }
                guard i > start, let d = Double(String(decoding: b[start..<i], as: UTF8.self)) else { throw fail("invalid value") }
                return .number(d)
            }
        }

        mutating func literal(_ word: String, _ v: ManifestJSON) throws(Failure) -> ManifestJSON {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<i + w.count]) == w else { throw fail("invalid value") }
            i += w.count
            return v
        }

        mutating func string() throws(Failure) -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]; i += 1
                if c == 0x22 { break }
                if c < 0x20 { throw fail("control character in string") }
                if c != 0x5c { out.append(c); continue }
                guard i < b.count else { throw fail("unterminated string") }
                let e = b[i]; i += 1
                switch e {
                case 0x22, 0x5c, 0x2f: out.append(e)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "u"):
                    guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16),
                          let s = Unicode.Scalar(v) else { throw fail("invalid \\u escape (surrogates are not supported)") }
                    i += 4
                    out += Array(String(Character(s)).utf8)
                default: throw fail("invalid escape")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not UTF-8") }
            return s
        }
    }
}
