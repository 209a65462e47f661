// One short job on a thread of its own (no Foundation in the plugin).
import Glibc

enum Thread {
    private final class Job { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    /// Runs `body` on a new detached thread; runs it inline if no thread can be made.
    static func detach(_ body: @escaping () -> Void) {
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            job.body()
            return nil
        }, job)
        if rc == 0 { pthread_detach(tid) } else { Unmanaged<Job>.fromOpaque(job).takeRetainedValue().body() }
    }
}
