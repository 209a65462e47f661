// Opaque instance handles: a Swift object behind a C `struct ody_vmm *`.
import PluginABI
// The host owns the handle between open and close; close releases it.

public enum Handle {
    public static func make<T: AnyObject>(_ object: T) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(object).toOpaque())
    }

    /// The object behind a handle, or nil for a NULL handle.
    public static func get<T: AnyObject>(_ handle: OpaquePointer?, as _: T.Type = T.self) -> T? {
        guard let handle else { return nil }
        return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    public static func release<T: AnyObject>(_ handle: OpaquePointer?, as _: T.Type) {
        guard let handle else { return }
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
    }
}

/// Copies NUL-separated names into a caller-owned buffer, the ABI's `list` shape.
public func writeNameList(_ names: [String], into buf: UnsafeMutablePointer<CChar>?, size: Int,
                          needed: UnsafeMutablePointer<Int>?, err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    var bytes: [UInt8] = []
    for n in names { bytes += Array(n.utf8); bytes.append(0) }
    needed?.pointee = bytes.count
    if bytes.count > size || (buf == nil && !bytes.isEmpty) {
        return fail(err, ODY_E_TOO_SMALL, "list needs \(bytes.count) bytes, buffer has \(size)")
    }
    if let buf { bytes.withUnsafeBytes { raw in
        UnsafeMutableRawPointer(buf).copyMemory(from: raw.baseAddress!, byteCount: bytes.count) } }
    return ODY_OK.rawValue
}

/// Splits a NUL-separated "key=value" blob (ody_domain_config.params).
public func parseParams(_ p: UnsafePointer<CChar>?, length: UInt32) -> [String: String] {
    guard let p, length > 0 else { return [:] }
    var out: [String: String] = [:]
    let buf = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: Int(length))
    for part in buf.split(separator: 0) {
        let s = String(decoding: part, as: UTF8.self)
        if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
    }
    return out
}
