// The host's one syscall layer: every libc call that can fail goes through
// here, retries EINTR, and turns errno into an OdysseyError naming the call
// and its context ("connect /run/odyssey/admin.sock: No such file or directory").
#if canImport(Glibc)
import Glibc
#endif

public enum Sys {
    /// Text for an errno value.
    public static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// The error for the current errno, tagged with what was attempted.
    public static func error(_ what: @autoclosure () -> String, errno code: Int32 = errno) -> OdysseyError {
        OdysseyError(.io, "\(what()): \(describe(errno: code))", cause: "errno \(code)")
    }

    /// Runs a call returning -1 on error, retrying on EINTR.
    @discardableResult
    public static func retry<T: BinaryInteger>(_ what: @autoclosure () -> String, _ call: () -> T) throws(OdysseyError) -> T {
        while true {
            let r = call()
            if r != -1 { return r }
            if errno == EINTR { continue }
            throw Sys.error(what())
        }
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)   // close is never retried on Linux (the fd is gone either way)
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, what: String) throws(OdysseyError) {
        var off = 0
        while off < bytes.count {
            let n = try retry(what) { Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off) }
            off += n
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws(OdysseyError) {
        try OdysseyError.rethrowing { try bytes.withUnsafeBytes { raw in try writeAll(fd, raw, what: what) } }
    }

    /// Reads until EOF or `limit` bytes; throws if more than `limit` arrive.
    public static func readAll(_ fd: Int32, limit: Int, what: String) throws(OdysseyError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try OdysseyError.rethrowing {
                try chunk.withUnsafeMutableBytes { raw in try retry(what) { Glibc.read(fd, raw.baseAddress!, raw.count) } }
            }
            if n == 0 { return out }
            out += chunk[0..<n]
            if out.count > limit { throw OdysseyError(.protocolError, "\(what): more than \(limit) bytes") }
        }
    }

    public static var isRoot: Bool { geteuid() == 0 }
}
