// Detached threads without Foundation's Thread (not in FoundationEssentials).
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum Threads {
    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    /// Starts `body` on a new detached thread with a modest stack.
    public static func detach(stackSize: Int = 512 * 1024, _ body: @escaping @Sendable () -> Void) {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attr, stackSize)
        let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, ctx)
        if rc != 0 {   // could not start a thread: run inline rather than drop the work
            Unmanaged<Box>.fromOpaque(ctx).takeRetainedValue().body()
        }
    }
}

/// Work run in order, one item at a time, on a thread that exists only while
/// there is work: for callers that must never block on what they hand off.
public final class SerialQueue: Sendable {
    private struct State { var work: [@Sendable () -> Void] = []; var draining = false }
    private let state = Mutex(State())

    public init() {}

    public func async(_ body: @escaping @Sendable () -> Void) {
        let start = state.withLock { s in
            s.work.append(body)
            if s.draining { return false }
            s.draining = true
            return true
        }
        guard start else { return }
        Threads.detach { [self] in
            while let next = state.withLock({ s -> (@Sendable () -> Void)? in
                if s.work.isEmpty { s.draining = false; return nil }
                return s.work.removeFirst()
            }) { next() }
        }
    }
}
