// A pthread mutex and monotonic time for plugins that cannot use Foundation
// (a Swift plugin without Foundation maps in well under a millisecond).
import Glibc

/// A non-recursive pthread mutex. Named so as not to clash with a plugin's own `Lock`.
public final class PluginLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    public func with<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}

/// CLOCK_MONOTONIC seconds, and a sleep that resumes after signals.
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func sleep(seconds: Double) {
        var req = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&req, &rem) == -1 && errno == EINTR { req = rem }
    }
}
