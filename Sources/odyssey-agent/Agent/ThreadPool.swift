// Threads for sessions, parked for a while after their work instead of
// exiting: making a thread (stack mapping, clone, TLS) costs about a
// millisecond under TCG, and it ran beside the command's own start on the
// guest's two vCPUs. A few idle threads, each gone after `idleNs` unused.
#if canImport(Glibc)
import Glibc
#endif

final class ThreadPool: @unchecked Sendable {
    static let sessions = ThreadPool(maxIdle: 4, idleNs: 30_000_000_000)

    private let maxIdle: Int
    private let idleNs: Int64
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var work: [@Sendable () -> Void] = []
    private var idle = 0

    init(maxIdle: Int, idleNs: Int64) {
        self.maxIdle = maxIdle
        self.idleNs = idleNs
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    /// Runs `body` on a parked thread, or a new one; false if none could be made.
    func run(_ body: @escaping @Sendable () -> Void) -> Bool {
        pthread_mutex_lock(mutex)
        if idle > work.count {
            work.append(body)
            pthread_cond_signal(cond)
            pthread_mutex_unlock(mutex)
            return true
        }
        pthread_mutex_unlock(mutex)
        return startThread { [self] in worker(body) }
    }

    private func worker(_ first: @escaping @Sendable () -> Void) {
        var next: (@Sendable () -> Void)? = first
        while let job = next {
            job()
            next = park()
        }
    }

    /// Waits for the next job; nil when enough threads are idle already or
    /// none came in time (the thread then ends).
    private func park() -> (@Sendable () -> Void)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard idle < maxIdle else { return nil }
        idle += 1
        let deadline = monotonicNs() + idleNs
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while work.isEmpty {
            if pthread_cond_timedwait(cond, mutex, &ts) == ETIMEDOUT { break }
        }
        idle -= 1
        return work.isEmpty ? nil : work.removeFirst()
    }
}
