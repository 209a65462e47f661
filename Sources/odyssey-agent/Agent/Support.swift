// Small helpers of the agent: logging to the console, threads, C strings.
#if canImport(Glibc)
import Glibc
#endif

enum Log {
    static func say(_ s: String) {
        let line = "odyssey-agent: " + s + "\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// ODYSSEY_BOOT_TRACE=1 (the guest kit's init sets it for odyssey.trace=1):
    /// the guest's uptime at each step of the agent's start, beside the
    /// init's own marks, to see where a VM's boot time goes.
    static let tracing = getenv("ODYSSEY_BOOT_TRACE").map { String(cString: $0) == "1" } ?? false

    static func mark(_ what: @autoclosure () -> String) {
        guard tracing else { return }
        let fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &b, b.count)
        let up = n > 0 ? String(decoding: b[0..<n], as: UTF8.self).split(separator: " ").first.map(String.init) ?? "?" : "?"
        say("t=\(up) \(what())")
    }
}

/// A detached pthread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    pthread_attr_setstacksize(&attr, 256 * 1024)
    let rc = pthread_create(&tid, &attr, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_attr_destroy(&attr)
    if rc != 0 { Unmanaged<Box>.fromOpaque(box).release(); return false }
    return true
}

/// NUL-terminated copies for execve; freed by `free`.
struct CStringArray {
    var pointers: [UnsafeMutablePointer<CChar>?]

    init(_ items: [[UInt8]]) {
        pointers = items.map { bytes in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            return p
        }
        pointers.append(nil)
    }

    func free() { for p in pointers { p?.deallocate() } }
}

func monotonicNs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
