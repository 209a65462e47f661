// Path string helpers (Foundation's NSString path API is not in
// FoundationEssentials, which is all odysseyd links).

public enum Path {
    public static func dirname(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/") else { return "." }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    public static func basename(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: slash)...])
    }

    public static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") { return b }
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// Joins and removes `.` and `..` components lexically (no symlink lookups).
    public static func resolve(_ p: String, relativeTo base: String) -> String {
        let full = join(base.isEmpty ? "." : base, p)
        var parts: [Substring] = []
        for c in full.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty && parts.last != ".." { parts.removeLast() } else if !full.hasPrefix("/") { parts.append(c) }; continue }
            parts.append(c)
        }
        let joined = parts.joined(separator: "/")
        return full.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }
}
