// The one syscall layer of vmm-native: every libc call that can fail goes
// through here, retries EINTR, and fails with the call and its context
// ("mkdir /var/lib/odyssey/run/work: EACCES").
import Glibc
import PluginABI
import CVmmNative

/// A failure with an ABI status code and a message that names the step.
struct NativeError: Error {
    var code: ody_status_code
    var backend: Int32 = 0
    var message: String

    init(_ code: ody_status_code, _ message: String, errno: Int32 = 0) {
        self.code = code
        self.backend = errno
        self.message = message
    }

    /// An errno failure of `what` (a call and its arguments).
    static func sys(_ what: String, _ e: Int32 = Glibc.errno) -> NativeError {
        let code: ody_status_code
        switch e {
        case EPERM, EACCES: code = ODY_E_PERMISSION
        case ENOENT, ESRCH: code = ODY_E_NOT_FOUND
        case ENOMEM: code = ODY_E_NO_MEMORY
        case EEXIST: code = ODY_E_EXISTS
        case EAGAIN: code = ODY_E_AGAIN
        case EIO: code = ODY_E_IO
        default: code = ODY_E_BACKEND
        }
        return NativeError(code, "native: \(what): \(Sys.errnoName(e))", errno: e)
    }
}

enum Sys {
    static func errnoName(_ e: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", E2BIG: "E2BIG",
            ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM",
            EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
            EINVAL: "EINVAL", ENOSPC: "ENOSPC", EROFS: "EROFS", ENAMETOOLONG: "ENAMETOOLONG",
            ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP", EOVERFLOW: "EOVERFLOW",
            EOPNOTSUPP: "EOPNOTSUPP", ETIMEDOUT: "ETIMEDOUT",
        ]
        if let n = names[e] { return n }
        return "errno \(e) (\(String(cString: strerror(e))))"
    }

    /// Runs a call that returns -1 and sets errno, retrying EINTR.
    @discardableResult
    static func check(_ what: @autoclosure () -> String, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            if rc >= 0 { return rc }
            let e = errno
            if e == EINTR { continue }
            throw NativeError.sys(what(), e)
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The whole file as text, or nil if it cannot be read.
    static func readText(_ path: String) -> String? {
        guard let bytes = readBytes(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Writes `text` into an existing file (cgroup and proc knobs).
    static func writeKnob(_ path: String, _ text: String) throws {
        let fd = try check("open \(path)") { open(path, O_WRONLY | O_CLOEXEC) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        try check("write '\(text)' to \(path)") {
            Int32(truncatingIfNeeded: bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) })
        }
    }

    /// Replaces `path` atomically with `bytes`; `durable` adds an fsync
    /// (needed for what must survive a power loss, not a process crash).
    static func writeAtomic(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600, durable: Bool = true) throws {
        let tmp = path + ".tmp"
        let fd = try check("create \(tmp)") { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { let e = errno; close(fd); throw NativeError.sys("write \(tmp)", e) }
            done += n
        }
        if durable && fsync(fd) != 0 { let e = errno; close(fd); throw NativeError.sys("fsync \(tmp)", e) }
        close(fd)
        try check("rename \(tmp) to \(path)") { rename(tmp, path) }
    }

    static func mkdirs(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        var prefix = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw NativeError.sys("mkdir \(prefix)") }
        }
    }

    /// Names in a directory, without "." and "..".
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -rf of a tree a domain may have written: iterative, constant
    /// memory, never follows symlinks or crosses into mounts (TreeRemoval).
    static func removeTree(_ path: String) throws { try TreeRemoval.remove(path) }

    /// Start time of a process in clock ticks since boot (/proc/PID/stat field
    /// 22): with the pid it identifies one process across pid reuse.
    static func processStartTime(_ pid: Int32) -> UInt64? {
        guard let stat = readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// The state letter of a process (R, S, Z...), nil if gone.
    static func processState(_ pid: Int32) -> Character? {
        guard let stat = readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ").first?.first
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func sleepMillis(_ ms: Int) {
        var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }

    static func pidfdOpen(_ pid: Int32) throws -> Int32 {
        try check("pidfd_open \(pid)") { vmm_pidfd_open(pid) }
    }

    /// Signals through a pidfd; a process that already exited is not an error.
    static func signal(_ pidfd: Int32, _ sig: Int32) {
        _ = vmm_pidfd_send_signal(pidfd, sig)
    }

    enum Exit { case exited(Int32), signaled(Int32) }

    /// Reaps `pidfd` if it is our exited child: how it ended, or nil when it
    /// is not our child (a re-adopted domain) or has not exited.
    static func reap(_ pidfd: Int32) -> Exit? {
        var info = siginfo_t()
        let rc = waitid(idtype_t(rawValue: UInt32(vmm_p_pidfd())), id_t(pidfd), &info, WEXITED | WNOHANG)
        guard rc == 0, info._sifields._sigchld.si_pid != 0 else { return nil }
        let status = info._sifields._sigchld.si_status
        return info.si_code == Int32(CLD_EXITED) ? .exited(status) : .signaled(status)
    }
}

/// A mutex and condition variable (no Foundation in plugins).
final class Lock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Waits (lock held) until `until` or the monotonic deadline; false on timeout.
    func wait(deadlineNanos: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
        return pthread_cond_timedwait(&cond, &mutex, &ts) == 0
    }

    func broadcast() { pthread_cond_broadcast(&cond) }
}
