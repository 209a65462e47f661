// A mutex with a condition variable (pthreads): Synchronization.Mutex has no
// way to wait for a state change, and the host avoids Foundation's NSCondition.
#if canImport(Glibc)
import Glibc
#endif

final class Monitor: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
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

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    func broadcast() { pthread_cond_broadcast(c) }

    /// Waits (lock held by the caller, inside withLock) until woken or until
    /// the monotonic `deadlineNs`; false when the deadline passed.
    func wait(untilNs deadlineNs: Int64?) -> Bool {
        guard let deadlineNs else { pthread_cond_wait(c, m); return true }
        var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
        return pthread_cond_timedwait(c, m, &ts) != ETIMEDOUT
    }

    static func nowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// Starts a detached pthread running `body` (one per agent link; links block
/// on their channel, which would starve a shared pool).
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) throws(OdysseyError) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    pthread_attr_setstacksize(&attr, 256 * 1024)
    let rc = pthread_create(&tid, &attr, { raw in
        let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    pthread_attr_destroy(&attr)
    if rc != 0 {
        Unmanaged<Box>.fromOpaque(box).release()
        throw OdysseyError(.io, "pthread_create for \(name) failed", cause: "errno \(rc)")
    }
}
