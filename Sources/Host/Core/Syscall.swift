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

extension Sys {
    /// Spawn attributes every child of ours gets: default signal handlers and
    /// an empty signal mask, whatever the spawning thread had blocked.
    public static func withCleanSpawnAttributes<T>(setsid: Bool = false, _ body: (inout posix_spawnattr_t) -> T) -> T {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        if setsid { flags |= 0x80 }   // POSIX_SPAWN_SETSID: behind _GNU_SOURCE, invisible to Swift
        posix_spawnattr_setflags(&attr, Int16(flags))
        return body(&attr)
    }
}

extension Sys {
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Monotonic seconds, for uptimes and timeouts.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Writes a small file atomically (temp file + rename).
    public static func writeFileAtomically(_ path: String, _ text: String, mode: mode_t = 0o644) throws(OdysseyError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Sys.error("open \(tmp)") }
        do { try writeAll(fd, Array(text.utf8), what: "write \(tmp)") } catch { Sys.close(fd); unlink(tmp); throw error }
        Sys.close(fd)
        guard rename(tmp, path) == 0 else { let e = Sys.error("rename \(tmp)"); unlink(tmp); throw e }
    }

    /// The running executable's path (/proc/self/exe).
    public static func executablePath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Sys {
    /// Prints a line on standard error (fd 2) without touching C's `stderr` global.
    public static func printError(_ line: String) {
        try? writeAll(2, Array((line + "\n").utf8), what: "stderr")
    }
}

extension Sys {
    /// realpath(3): the path with every symlink resolved, or nil.
    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The names in a directory (no "." or "..").
    public static func listDirectory(_ path: String) throws(OdysseyError) -> [String] {
        guard let dir = opendir(path) else { throw Sys.error("opendir \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
