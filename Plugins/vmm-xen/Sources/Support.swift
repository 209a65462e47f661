// Small helpers shared by the vmm-xen sources (the same as vmm-libvirt's: each
// plugin links its own copy): a pthread mutex, bounded
// reads of names handed in by the host, and monotonic time.
import Glibc
import PluginABI
import PluginKit

final class Lock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    func with<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}

enum Names {
    /// A domain name handed in as `const char *`: NUL-terminated within
    /// ODY_NAME_MAX, non-empty, valid UTF-8, no control characters. Every
    /// other character is allowed (the state file percent-encodes names).
    static func read(_ p: UnsafePointer<CChar>?, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, Failure> {
        guard let p else { return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): NULL domain name"))) }
        let n = strnlen(p, Int(ODY_NAME_MAX))
        guard n < Int(ODY_NAME_MAX) else {
            return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): domain name longer than \(ODY_NAME_MAX - 1) bytes")))
        }
        let bytes = UnsafeRawBufferPointer(start: p, count: n)
        return check(Array(bytes), op, err)
    }

    /// The name field of an ody_domain_config (a fixed char[ODY_NAME_MAX]).
    static func read<T>(field: T, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, Failure> {
        let bytes: [UInt8] = withUnsafeBytes(of: field) { Array($0) }
        guard let end = bytes.firstIndex(of: 0) else {
            return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): domain name is not NUL-terminated within \(ODY_NAME_MAX) bytes")))
        }
        return check(Array(bytes[..<end]), op, err)
    }

    private static func check(_ bytes: [UInt8], _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Result<String, Failure> {
        guard !bytes.isEmpty else { return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): empty domain name"))) }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): domain name is not valid UTF-8")))
        }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return .failure(Failure(fail(err, ODY_E_INVALID, "\(op): domain name contains a control character")))
        }
        return .success(s)
    }
}

/// A status already written into the caller's ody_error.
struct Failure: Error {
    let status: Int32
    init(_ status: Int32) { self.status = status }
}

enum Clock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func sleep(seconds: Double) {
        var req = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&req, &rem) == -1 && errno == EINTR { req = rem }
    }
}
