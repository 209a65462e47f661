// Text rules borrowed from the reference implementation (Python), so that the same policy file
// splits into the same fields and the same error message quotes a value the same way.

/// How the reference (Python) treats text: what is whitespace, how a value is quoted in an
/// error message, how a path is printed.
enum PythonText {
    /// `str.isspace()` / `str.split()` whitespace: the ASCII controls 0x09-0x0D and 0x1C-0x1F,
    /// space, and the Unicode spaces. A policy file separated by U+00A0 splits the same way in
    /// Odyssey as in Qubes.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
             0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Python's `line.split()`: runs of whitespace separate fields; no empty fields.
    static func splitFields(_ line: Substring.UnicodeScalarView) -> [String] {
        var fields: [String] = []
        var start: Substring.UnicodeScalarView.Index? = nil
        var index = line.startIndex
        while index < line.endIndex {
            if isWhitespace(line[index]) {
                if let fieldStart = start {
                    fields.append(String(line[fieldStart..<index]))
                    start = nil
                }
            } else if start == nil {
                start = index
            }
            line.formIndex(after: &index)
        }
        if let fieldStart = start { fields.append(String(line[fieldStart..<line.endIndex])) }
        return fields
    }

    /// Python's `str.strip()` with no argument.
    static func strip(_ text: Substring) -> Substring {
        let scalars = text.unicodeScalars
        var lower = scalars.startIndex
        var upper = scalars.endIndex
        while lower < upper, isWhitespace(scalars[lower]) { scalars.formIndex(after: &lower) }
        while upper > lower {
            let before = scalars.index(before: upper)
            if !isWhitespace(scalars[before]) { break }
            upper = before
        }
        return Substring(scalars[lower..<upper])
    }

    /// Lines as Python's text mode reads them (universal newlines): `\n`, `\r\n` and a lone `\r`
    /// all end a line. Line numbers start at 1.
    static func lines(_ text: String) -> [Substring] {
        var result: [Substring] = []
        let scalars = text.unicodeScalars
        var lineStart = scalars.startIndex
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "\n" || scalar == "\r" {
                result.append(Substring(scalars[lineStart..<index]))
                var next = scalars.index(after: index)
                if scalar == "\r", next < scalars.endIndex, scalars[next] == "\n" {
                    next = scalars.index(after: next)
                }
                lineStart = next
                index = next
            } else {
                scalars.formIndex(after: &index)
            }
        }
        if lineStart < scalars.endIndex { result.append(Substring(scalars[lineStart..<scalars.endIndex])) }
        return result
    }

    /// Python's `repr()` of a string: single quotes unless the text holds a single quote and no
    /// double quote; backslash escapes for controls and for characters Python does not print.
    static func repr(_ text: String) -> String {
        let useDouble = text.contains("'") && !text.contains("\"")
        let quote: Unicode.Scalar = useDouble ? "\"" : "'"
        var out = String(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case quote: out += "\\" + String(quote)
            default:
                if scalar.value >= 0x20 && scalar.value < 0x7F {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value >= 0x80 && isPrintable(scalar) {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value <= 0xFF {
                    out += "\\x" + hex(scalar.value, digits: 2)
                } else if scalar.value <= 0xFFFF {
                    out += "\\u" + hex(scalar.value, digits: 4)
                } else {
                    out += "\\U" + hex(scalar.value, digits: 8)
                }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }

    /// Python's `repr()` of a list of strings: `['a', 'b']`.
    static func reprList(_ items: [String]) -> String {
        "[" + items.map(repr).joined(separator: ", ") + "]"
    }

    /// Python's `repr()` of a tuple of strings: `('a',)` for one item, `('a', 'b')` for more.
    static func reprTuple(_ items: [String]) -> String {
        if items.count == 1 { return "(" + repr(items[0]) + ",)" }
        return "(" + items.map(repr).joined(separator: ", ") + ")"
    }

    /// `str.isprintable()` for one non-ASCII character: everything but controls, format
    /// characters, surrogates, private use, unassigned code points and separators.
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator,
             .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// How `pathlib.PurePath` prints a path: repeated and trailing slashes collapse, `.`
    /// components vanish (`./a/./b/` prints as `a/b`), `..` stays.
    static func normalizePath(_ path: String) -> String {
        if path.isEmpty { return "." }
        let absolute = path.hasPrefix("/")
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// `PurePath(directory) / name`, printed.
    static func join(_ directory: String, _ name: String) -> String {
        if name.hasPrefix("/") { return normalizePath(name) }
        let base = normalizePath(directory)
        if base == "." { return normalizePath(name) }
        return normalizePath(base + "/" + name)
    }

    /// `PurePath(path).parent`, printed.
    static func parent(_ path: String) -> String {
        let normalized = normalizePath(path)
        guard let slash = normalized.lastIndex(of: "/") else { return "." }
        if slash == normalized.startIndex { return "/" }
        return String(normalized[..<slash])
    }

    /// `PurePath(path).name`.
    static func basename(_ path: String) -> String {
        let normalized = normalizePath(path)
        guard let slash = normalized.lastIndex(of: "/") else { return normalized }
        return String(normalized[normalized.index(after: slash)...])
    }
}
