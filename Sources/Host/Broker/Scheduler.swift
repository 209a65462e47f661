// The broker's workers: every call runs on a worker thread of its own (a
// slow start must not hold up anybody else; an ask gives its worker back
// while it waits, see Asks.swift), bounded in total and per source domain. Calls beyond a bound wait in their source's queue;
// free workers take queued calls round-robin over the sources, so one domain
// flooding the broker delays another domain's call by at most one call per
// busy source, never by the flood's length.
#if canImport(Glibc)
import Glibc
#endif

final class FairScheduler: @unchecked Sendable {
    typealias Job = @Sendable () -> Void
    let maxWorkers: Int
    let maxPerSource: Int
    private let monitor = Monitor()
    private var queues: [String: [Job]] = [:]
    private var heads: [String: Int] = [:]
    /// Sources with queued work, in round-robin order.
    private var ring: [String] = []
    private var runningBySource: [String: Int] = [:]
    private var workers = 0
    private var idle = 0

    init(maxWorkers: Int = 96, maxPerSource: Int = 24) {
        self.maxWorkers = maxWorkers
        self.maxPerSource = maxPerSource
    }

    func submit(source: String, _ job: @escaping Job) {
        let spawn: Bool = monitor.withLock {
            if queues[source] == nil { queues[source] = []; heads[source] = 0 }
            queues[source]!.append(job)
            if !ring.contains(source) { ring.append(source) }
            if idle > 0 { monitor.broadcast(); return false }
            if workers < maxWorkers && (runningBySource[source] ?? 0) < maxPerSource { workers += 1; return true }
            return false
        }
        if spawn { startWorker() }
    }

    private func startWorker() {
        do { try startThread("broker worker") { [self] in workerLoop() } } catch {
            monitor.withLock { workers -= 1 }
        }
    }

    /// The next job some source may run now (round-robin), under the lock.
    private func takeLocked() -> (String, Job)? {
        for _ in 0..<ring.count {
            let s = ring.removeFirst()
            guard var q = queues[s], let h = heads[s], h < q.count else { continue }
            if (runningBySource[s] ?? 0) >= maxPerSource { ring.append(s); continue }
            let job = q[h]
            if h + 1 == q.count { queues[s] = nil; heads[s] = nil } else {
                if h > 64 && h * 2 > q.count { q.removeFirst(h + 1); queues[s] = q; heads[s] = 0 } else { heads[s] = h + 1 }
                ring.append(s)
            }
            runningBySource[s, default: 0] += 1
            return (s, job)
        }
        return nil
    }

    private func workerLoop() {
        while true {
            let next: (String, Job)? = monitor.withLock {
                while true {
                    if let j = takeLocked() { return j }
                    idle += 1
                    let woke = monitor.wait(untilNs: Monitor.nowNs() + 5_000_000_000)
                    idle -= 1
                    if !woke, ring.isEmpty { workers -= 1; return nil }   // idle a while: let the thread go
                }
            }
            guard let (source, job) = next else { return }
            job()
            monitor.withLock {
                runningBySource[source]! -= 1
                if runningBySource[source] == 0 { runningBySource[source] = nil }
                if !ring.isEmpty { monitor.broadcast() }
            }
        }
    }

    /// Queued (not yet running) jobs, for tests and diagnostics.
    var queued: Int { monitor.withLock { queues.reduce(0) { $0 + $1.value.count - (heads[$1.key] ?? 0) } } }
}
