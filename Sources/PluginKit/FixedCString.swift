// The ABI uses fixed char arrays (flat, serialisable); Swift sees them as tuples.
// These helpers copy Swift strings in and out of such arrays without overflow.

public enum FixedCString {
    /// Reads a NUL-terminated string from a fixed char array (a C `char[N]`).
    public static func read<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// Writes `value` into a fixed char array, truncated to fit with its NUL.
    /// Returns false if it had to truncate.
    @discardableResult
    public static func write<T>(_ value: String, into tuple: inout T) -> Bool {
        withUnsafeMutableBytes(of: &tuple) { raw in
            let utf8 = Array(value.utf8)
            let n = min(utf8.count, raw.count - 1)
            for i in 0..<n { raw[i] = utf8[i] }
            for i in n..<raw.count { raw[i] = 0 }
            return n == utf8.count
        }
    }
}

/// C strings that live as long as the process: plugins hand these out in
/// their info and factory structs, and plugins are never unloaded.
public func immortalCString(_ s: String) -> UnsafePointer<CChar> {
    let utf8 = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(p)
}
