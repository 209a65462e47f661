// Text in and out of libvirt domain XML: escaping for everything we write
// (names, paths, command lines all come from users or the host), and a
// reader for the one element we read back, our own <metadata> block, which
// libvirt re-serialises (quotes, entities) as it likes.

public enum XML {
    /// Escapes text for element content and for attributes in either quote style.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The inverse of `escape`, plus numeric references (libvirt writes `&#10;` etc.).
    /// nil on an entity we do not know: metadata we cannot read is refused, not guessed.
    public static func unescape(_ s: String) -> String? {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { return nil }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "apos": out += "'"
            case "quot": out += "\""
            default:
                var digits = entity.dropFirst()
                guard entity.first == "#" else { return nil }
                var radix = 10
                if digits.first == "x" || digits.first == "X" { radix = 16; digits = digits.dropFirst() }
                guard let v = UInt32(digits, radix: radix), let u = Unicode.Scalar(v) else { return nil }
                out.unicodeScalars.append(u)
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

    /// True if `s` has a C0 control character or DEL (XML 1.0 cannot carry
    /// most of them, and no name or path of ours needs any).
    public static func hasControl(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    /// The unescaped text of the first `<tag>…</tag>` in `xml`; "" for `<tag/>`;
    /// nil if absent. Tags are ours and carry no attributes.
    public static func text(of tag: String, in xml: String) -> String? {
        if xml.contains("<\(tag)/>") { return "" }
        guard let open = xml.find("<\(tag)>") else { return nil }
        let after = xml[open.upperBound...]
        guard let close = after.find("</\(tag)>") else { return nil }
        return unescape(String(after[..<close.lowerBound]))
    }
}

extension String {
    /// Byte-wise search (no Foundation in the plugin).
    func find(_ needle: String) -> Range<Index>? { self[...].find(needle) }
}

extension Substring {
    func find(_ needle: String) -> Range<Index>? {
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return nil }
        var i = utf8.startIndex
        while i != utf8.endIndex {
            var j = i, k = 0
            while k < n.count, j != utf8.endIndex, utf8[j] == n[k] { j = utf8.index(after: j); k += 1 }
            if k == n.count { return i..<j }
            i = utf8.index(after: i)
        }
        return nil
    }
}
