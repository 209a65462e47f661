// Text from a domain, made safe to show in a trusted frame: invalid UTF-8
// becomes U+FFFD; control characters and the bidirectional overrides and
// isolates (which could reorder "[work] x" to look like another domain's
// title) are dropped. The `[domain] ` prefix is added by the daemon, never
// taken from the domain.

public enum GuiText {
    public static func printable(_ untrusted: ArraySlice<UInt8>, maxBytes: Int) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for scalar in String(decoding: untrusted, as: UTF8.self).unicodeScalars where isShown(scalar) {
            bytes += String(scalar).utf8.count
            if bytes > maxBytes { break }
            out.append(scalar)
        }
        return String(out)
    }

    /// WM class strings: printable ASCII only, others become '_'.
    public static func classString(_ untrusted: ArraySlice<UInt8>) -> String {
        String(decoding: untrusted.map { (0x20...0x7e).contains($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
    }

    static func isShown(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0..<0x20, 0x7f..<0xa0: return false              // C0, DEL, C1 controls
        case 0x200e, 0x200f, 0x061c: return false              // direction marks
        case 0x202a...0x202e, 0x2066...0x2069: return false    // bidi embeddings, overrides, isolates
        case 0x2028, 0x2029: return false                      // line and paragraph separators
        default: return true
        }
    }
}
