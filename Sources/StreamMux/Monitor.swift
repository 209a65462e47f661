// A pthread mutex with one condition (no Foundation: the agent is static),
// and a detached pthread for the session's loop.
#if canImport(Glibc)
import Glibc
#endif

public final class MuxMonitor: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(m, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(c, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(c); pthread_mutex_destroy(m)
        c.deallocate(); m.deallocate()
    }

    @inline(__always)
    public func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    /// Inside `locked`: sleeps until a broadcast or `deadlineNs` (nil: none); false on timeout.
    public func wait(untilNs deadlineNs: Int64?) -> Bool {
        guard let d = deadlineNs else { pthread_cond_wait(c, m); return true }
        var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
        return pthread_cond_timedwait(c, m, &ts) != ETIMEDOUT
    }

    public func broadcast() { pthread_cond_broadcast(c) }

    public static func nowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

final class ThreadBox { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

/// Starts `body` on a detached pthread; false if the thread could not be made.
func startDetachedThread(_ body: @escaping () -> Void) -> Bool {
    let box = Unmanaged.passRetained(ThreadBox(body)).toOpaque()
    var tid = pthread_t()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    defer { pthread_attr_destroy(&attr) }
    let rc = pthread_create(&tid, &attr, { raw in
        let b = Unmanaged<ThreadBox>.fromOpaque(raw!).takeRetainedValue()
        // The loop never handles signals: a process that takes them with
        // sigwait on one thread (the agent's SIGCHLD reaper) must not have
        // them delivered here instead, whenever this thread was started.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        b.body()
        return nil
    }, box)
    if rc != 0 { Unmanaged<ThreadBox>.fromOpaque(box).release(); return false }
    return true
}
