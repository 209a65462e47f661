// A strict reader for the TOML subset a config file needs: tables, dotted
// keys, strings, integers, floats, booleans, arrays and inline tables.
//
// Why not TOMLKit: it imports Foundation (and toml++ brings libstdc++), which
// costs odysseyd about 7.6 MB of resident memory (measured: 21.7 MB idle with
// it, 12.8 MB with FoundationEssentials only) against a 20 MB bar. Anything
// outside the subset (dates, multi-line strings, arrays of tables) is a clear
// error with its line, never a silent misread.

public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .array: "array"
        case .table: "table"
        }
    }
}

/// A table that remembers key order and the line each key was set on.
public struct TOMLTable: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    private var lines: [String: Int] = [:]
    /// Tables created implicitly by a dotted header ([a.b] creates a) may
    /// still be defined explicitly once.
    var implicit = false

    public init() {}

    public subscript(key: String) -> TOMLValue? { values[key] }
    public func line(of key: String) -> Int { lines[key] ?? 0 }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
        lines[key] = line
    }

    public var entries: [(key: String, value: TOMLValue, line: Int)] {
        keys.map { ($0, values[$0]!, lines[$0] ?? 0) }
    }
}

public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

public enum TOMLReader {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var p = Parser(Array(text.utf8))
        return try p.document()
    }
}

private struct Parser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var root = TOMLTable()
    var current: [String] = []      // path of the table being filled
    var defined: Set<[String]> = []  // tables defined by a header

    init(_ bytes: [UInt8]) { b = bytes }

    func fail(_ m: String) -> TOMLError { TOMLError(line: line, message: m) }

    var atEnd: Bool { i >= b.count }
    var peek: UInt8 { i < b.count ? b[i] : 0 }

    mutating func skipSpaces() { while !atEnd && (peek == 0x20 || peek == 0x09) { i += 1 } }

    mutating func skipComment() {
        if peek == UInt8(ascii: "#") { while !atEnd && peek != 0x0a { i += 1 } }
    }

    /// After a statement: only spaces, a comment, then a newline or the end.
    mutating func endOfLine() throws(TOMLError) {
        skipSpaces(); skipComment()
        if atEnd { return }
        if peek == 0x0d && i + 1 < b.count && b[i + 1] == 0x0a { i += 1 }
        guard peek == 0x0a else { throw fail("unexpected text after value: '\(restOfLine())'") }
        i += 1; line += 1
    }

    func restOfLine() -> String {
        var j = i
        while j < b.count && b[j] != 0x0a { j += 1 }
        return String(decoding: b[i..<j], as: UTF8.self)
    }

    /// Skips blank lines, comments and newlines (inside arrays too).
    mutating func skipTrivia() {
        while !atEnd {
            skipSpaces(); skipComment()
            if peek == 0x0a { i += 1; line += 1 } else if peek == 0x0d { i += 1 } else { return }
        }
    }

    mutating func document() throws(TOMLError) -> TOMLTable {
        while true {
            skipTrivia()
            if atEnd { return root }
            if peek == UInt8(ascii: "[") { try header() } else { try keyValue() }
        }
    }

    mutating func header() throws(TOMLError) {
        i += 1
        if peek == UInt8(ascii: "[") { throw fail("arrays of tables ([[...]]) are not supported here") }
        skipSpaces()
        let path = try dottedKey()
        skipSpaces()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ']' to close the table header") }
        i += 1
        guard !defined.contains(path) else { throw fail("table [\(path.joined(separator: "."))] defined twice") }
        defined.insert(path)
        try ensureTable(path, explicit: true)
        current = path
        try endOfLine()
    }

    mutating func keyValue() throws(TOMLError) {
        let keyLine = line
        let path = try dottedKey()
        skipSpaces()
        guard peek == UInt8(ascii: "=") else { throw fail("expected '=' after key '\(path.joined(separator: "."))'") }
        i += 1
        skipSpaces()
        let v = try value()
        try insert(current + path, v, line: keyLine)
        try endOfLine()
    }

    mutating func dottedKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            parts.append(try simpleKey())
            skipSpaces()
            if peek == UInt8(ascii: ".") { i += 1; continue }
            return parts
        }
    }

    mutating func simpleKey() throws(TOMLError) -> String {
        if peek == UInt8(ascii: "\"") { return try basicString() }
        if peek == UInt8(ascii: "'") { return try literalString() }
        let start = i
        while !atEnd, isBareKeyByte(peek) { i += 1 }
        guard i > start else { throw fail("expected a key, found '\(restOfLine())'") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        switch peek {
        case UInt8(ascii: "\""):
            if i + 2 < b.count && b[i + 1] == 0x22 && b[i + 2] == 0x22 { throw fail("multi-line strings are not supported here") }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if i + 2 < b.count && b[i + 1] == 0x27 && b[i + 2] == 0x27 { throw fail("multi-line strings are not supported here") }
            return .string(try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return try boolean()
        case 0, 0x0a, 0x0d, UInt8(ascii: "#"): throw fail("missing value")
        default: return try number()
        }
    }

    mutating func basicString() throws(TOMLError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard !atEnd, peek != 0x0a else { throw fail("unterminated string") }
            let c = peek; i += 1
            if c == 0x22 { break }
            if c == 0x5c {
                guard !atEnd else { throw fail("unterminated string") }
                let e = peek; i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "u") ? 4 : 8
                    guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<i + n], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(v) else { throw fail("invalid unicode escape") }
                    i += n
                    out += Array(String(Character(scalar)).utf8)
                default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))' in string")
                }
                continue
            }
            if c < 0x20 && c != 0x09 { throw fail("control character in string") }
            out.append(c)
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }

    mutating func literalString() throws(TOMLError) -> String {
        i += 1
        let start = i
        while !atEnd && peek != UInt8(ascii: "'") {
            if peek == 0x0a { throw fail("unterminated string") }
            i += 1
        }
        guard !atEnd else { throw fail("unterminated string") }
        let s = b[start..<i]
        i += 1
        guard let str = String(validating: s, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return str
    }

    mutating func boolean() throws(TOMLError) -> TOMLValue {
        if b[i...].starts(with: Array("true".utf8)) { i += 4; return .boolean(true) }
        if b[i...].starts(with: Array("false".utf8)) { i += 5; return .boolean(false) }
        throw fail("invalid value '\(restOfLine())' (strings need quotes)")
    }

    mutating func number() throws(TOMLError) -> TOMLValue {
        let start = i
        while !atEnd, !(peek == 0x20 || peek == 0x09 || peek == 0x0a || peek == 0x0d || peek == UInt8(ascii: ",")
                        || peek == UInt8(ascii: "]") || peek == UInt8(ascii: "}") || peek == UInt8(ascii: "#")) { i += 1 }
        let raw = String(decoding: b[start..<i], as: UTF8.self)
        let text = raw.filter { $0 != "_" }
        if text.hasPrefix("0x"), let v = Int(text.dropFirst(2), radix: 16) { return .integer(v) }
        if let v = Int(text) { return .integer(v) }
        if text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(text) { return .float(d) }
        if raw.contains("-") && raw.contains(":") || raw.count == 10 && raw.contains("-") { throw fail("dates and times are not supported here") }
        throw fail("invalid value '\(raw)' (strings need quotes)")
    }

    mutating func array() throws(TOMLError) -> TOMLValue {
        i += 1
        var items: [TOMLValue] = []
        while true {
            skipTrivia()
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            guard !atEnd else { throw fail("unterminated array") }
            items.append(try value())
            skipTrivia()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            guard !atEnd else { throw fail("unterminated array") }
            guard peek == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in array") }
        }
    }

    mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        i += 1
        var t = TOMLTable()
        skipSpaces()
        if peek == UInt8(ascii: "}") { i += 1; return .table(t) }
        while true {
            skipSpaces()
            let key = try dottedKey()
            guard key.count == 1 else { throw fail("dotted keys inside inline tables are not supported here") }
            skipSpaces()
            guard peek == UInt8(ascii: "=") else { throw fail("expected '=' in inline table") }
            i += 1; skipSpaces()
            guard t[key[0]] == nil else { throw fail("key '\(key[0])' set twice") }
            t.set(key[0], try value(), line: line)
            skipSpaces()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            guard peek == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in inline table") }
            i += 1
            return .table(t)
        }
    }

    // MARK: building the tree

    mutating func ensureTable(_ path: [String], explicit: Bool) throws(TOMLError) {
        func walk(_ t: inout TOMLTable, _ rest: ArraySlice<String>, _ line: Int, _ explicit: Bool) throws(TOMLError) {
            guard let k = rest.first else { return }
            var child: TOMLTable
            switch t[k] {
            case nil:
                child = TOMLTable()
                child.implicit = rest.count > 1 || !explicit
            case .table(let existing):
                child = existing
                if rest.count == 1 && explicit {
                    guard child.implicit else { throw TOMLError(line: line, message: "table '\(k)' defined twice") }
                    child.implicit = false
                }
            default:
                throw TOMLError(line: line, message: "key '\(k)' is already a \(t[k]!.typeName), not a table")
            }
            try walk(&child, rest.dropFirst(), line, explicit)
            t.set(k, .table(child), line: t[k] == nil ? line : t.line(of: k))
        }
        try walk(&root, path[...], line, explicit)
    }

    mutating func insert(_ path: [String], _ v: TOMLValue, line: Int) throws(TOMLError) {
        func walk(_ t: inout TOMLTable, _ rest: ArraySlice<String>) throws(TOMLError) {
            let k = rest.first!
            if rest.count == 1 {
                guard t[k] == nil else { throw TOMLError(line: line, message: "key '\(k)' set twice") }
                t.set(k, v, line: line)
                return
            }
            var child: TOMLTable
            switch t[k] {
            case nil: child = TOMLTable(); child.implicit = true
            case .table(let existing): child = existing
            default: throw TOMLError(line: line, message: "key '\(k)' is already a \(t[k]!.typeName), not a table")
            }
            try walk(&child, rest.dropFirst())
            t.set(k, .table(child), line: t[k] == nil ? line : t.line(of: k))
        }
        try walk(&root, path[...])
    }
}
