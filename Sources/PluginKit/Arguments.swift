// Checks every vmm plugin makes on what the host hands in: flag bits and
// domain names. Each failure is written into the caller's ody_error first.
import Glibc
import PluginABI

/// A status already written into the caller's ody_error.
public struct ReportedError: Error {
    public let status: Int32
    public init(_ status: Int32) { self.status = status }
}

/// ody_check_flags as an early return (nil when every bit is known), with a
/// message naming the operation and the offending bits.
public func checkFlags(_ flags: UInt32, known: UInt32, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
    let rc = ody_check_flags(flags, known, err)
    if rc == ODY_OK.rawValue { return nil }
    return fail(err, rc, "\(op): unknown flag bits 0x\(String(flags & ~known, radix: 16)) (known: 0x\(String(known, radix: 16)))")
}

public enum DomainName {
    /// A domain name handed in as `const char *`: NUL-terminated within
    /// ODY_NAME_MAX, non-empty, valid UTF-8, no control characters. Every
    /// other character is allowed: a backend escapes or encodes it wherever
    /// it goes (XML, state files).
    public static func read(_ p: UnsafePointer<CChar>?, _ op: String,
                            _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, ReportedError> {
        guard let p else { return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): NULL domain name"))) }
        let n = strnlen(p, Int(ODY_NAME_MAX))
        guard n < Int(ODY_NAME_MAX) else {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): domain name longer than \(ODY_NAME_MAX - 1) bytes")))
        }
        return check(Array(UnsafeRawBufferPointer(start: p, count: n)), op, err)
    }

    /// The name field of an ody_domain_config (a fixed char[ODY_NAME_MAX]).
    public static func read<T>(field: T, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, ReportedError> {
        let bytes: [UInt8] = withUnsafeBytes(of: field) { Array($0) }
        guard let end = bytes.firstIndex(of: 0) else {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): domain name is not NUL-terminated within \(ODY_NAME_MAX) bytes")))
        }
        return check(Array(bytes[..<end]), op, err)
    }

    private static func check(_ bytes: [UInt8], _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, ReportedError> {
        guard !bytes.isEmpty else { return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): empty domain name"))) }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): domain name is not valid UTF-8")))
        }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): domain name contains a control character")))
        }
        return .success(s)
    }
}
