// Detached threads without Foundation's Thread (not in FoundationEssentials).
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
