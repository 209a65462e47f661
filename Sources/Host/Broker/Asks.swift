// Calls the policy answered with `ask`: parked here as state until someone
// answers (admin.odyssey.policy.Answer, the terminal prompt) or the ask
// times out (config ask_timeout), which denies. A parked ask holds no
// thread: its `resume` runs when it is decided, and the broker schedules the
// rest of the call then (issue 11, finding 15). One timer thread, alive only
// while asks are pending, sleeps until the earliest deadline. An answer must
// be one of the offered choices; any other answer refuses the call.
#if canImport(Glibc)
import Glibc
#endif

/// One call waiting for a user's decision.
public struct PendingAsk: Sendable, Equatable {
    /// Short decimal id, unique for the daemon's life.
    public let id: String
    /// The calling domain (from its channel).
    public let source: String
    /// `SERVICE+ARG` as requested.
    public let service: String
    /// The target as the caller wrote it.
    public let requestedTarget: String
    /// What the user may choose, sorted.
    public let choices: [String]
    public let defaultTarget: String?
    /// Seconds left before the call is refused.
    public let secondsLeft: Int
}

/// The user's answer to an ask.
public enum AskAnswer: Sendable, Equatable {
    case allow(String)
    case deny
}

final class AskTable: @unchecked Sendable {
    /// Receives the answer (nil: timed out); runs outside the table's lock.
    typealias Resume = @Sendable (AskAnswer?) -> Void
    private struct Entry {
        var ask: PendingAsk
        var deadlineNs: Int64
        var resume: Resume
    }
    private let monitor = Monitor()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var bySource: [String: Int] = [:]
    private var nextID = 1
    private var timerRunning = false
    /// Called (outside the lock) for every new ask: the terminal prompt.
    var onNew: (@Sendable (PendingAsk) -> Void)?

    /// Parks an ask; `resume` runs once, with the answer or nil at the
    /// deadline. Returns nil (and never calls `resume`) when `source`
    /// already has `maxPerSource` asks pending.
    func park(source: String, service: String, requestedTarget: String, choices: [String], defaultTarget: String?,
              timeoutSeconds: Int, maxPerSource: Int, resume: @escaping Resume) -> PendingAsk? {
        let deadline = Monitor.nowNs() + Int64(max(timeoutSeconds, 0)) * 1_000_000_000
        let (ask, startTimer): (PendingAsk?, Bool) = monitor.withLock {
            guard (bySource[source] ?? 0) < maxPerSource else { return (nil, false) }
            let id = String(nextID)
            nextID += 1
            let a = PendingAsk(id: id, source: source, service: service, requestedTarget: requestedTarget,
                               choices: choices, defaultTarget: defaultTarget, secondsLeft: timeoutSeconds)
            entries[id] = Entry(ask: a, deadlineNs: deadline, resume: resume)
            order.append(id)
            bySource[source, default: 0] += 1
            monitor.broadcast()   // the timer may need to wake earlier
            let start = !timerRunning
            timerRunning = true
            return (a, start)
        }
        guard let ask else { return nil }
        if startTimer {
            do { try startThread("ask timer") { [self] in timerLoop() } } catch {
                // No timer: this ask would never time out; refuse it now.
                monitor.withLock { timerRunning = false }
                _ = decide(ask.id, nil)
                return ask
            }
        }
        onNew?(ask)
        return ask
    }

    var pending: [PendingAsk] {
        monitor.withLock {
            let now = Monitor.nowNs()
            return order.compactMap { id in
                guard let e = entries[id] else { return nil }
                let a = e.ask
                return PendingAsk(id: a.id, source: a.source, service: a.service, requestedTarget: a.requestedTarget,
                                  choices: a.choices, defaultTarget: a.defaultTarget,
                                  secondsLeft: Int(max(0, (e.deadlineNs - now) / 1_000_000_000)))
            }
        }
    }

    /// Asks of `source` pending now.
    func count(of source: String) -> Int { monitor.withLock { bySource[source] ?? 0 } }

    /// Records an answer and resumes the call; nil when no such ask is
    /// pending (answered, timed out).
    func answer(_ id: String, _ a: AskAnswer) -> PendingAsk? { decide(id, a) }

    private func decide(_ id: String, _ a: AskAnswer?) -> PendingAsk? {
        guard let e = monitor.withLock({ removeLocked(id) }) else { return nil }
        e.resume(a)
        return e.ask
    }

    private func removeLocked(_ id: String) -> Entry? {
        guard let e = entries.removeValue(forKey: id) else { return nil }
        order.removeAll { $0 == id }
        let n = (bySource[e.ask.source] ?? 1) - 1
        bySource[e.ask.source] = n > 0 ? n : nil
        return e
    }

    /// Sleeps until the earliest deadline (or a new ask), times out what is
    /// due; exits when nothing is pending (the next ask starts it again).
    private func timerLoop() {
        while true {
            let due: [Entry]? = monitor.withLock {
                if entries.isEmpty { timerRunning = false; return nil }
                let now = Monitor.nowNs()
                let expired = entries.values.filter { $0.deadlineNs <= now }.map(\.ask.id)
                if expired.isEmpty {
                    let next = entries.values.map(\.deadlineNs).min() ?? now
                    _ = monitor.wait(untilNs: next)
                    return []
                }
                return expired.compactMap { removeLocked($0) }
            }
            guard let due else { return }
            for e in due { e.resume(nil) }
        }
    }
}
