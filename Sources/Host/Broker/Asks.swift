// Calls the policy answered with `ask`: held here until someone answers
// (admin.odyssey.policy.Answer, the terminal prompt) or the ask times out
// (config ask_timeout_seconds), which denies. An answer must be one of the
// offered choices; any other answer refuses the call.
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
    private struct Entry {
        var ask: PendingAsk
        var deadlineNs: Int64
        var answer: AskAnswer?
    }
    private let monitor = Monitor()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var nextID = 1
    /// Called (outside the lock) for every new ask: the terminal prompt.
    var onNew: (@Sendable (PendingAsk) -> Void)?

    /// Registers an ask and blocks until it is answered or times out (nil).
    func wait(source: String, service: String, requestedTarget: String, choices: [String], defaultTarget: String?,
              timeoutSeconds: Int) -> AskAnswer? {
        let deadline = Monitor.nowNs() + Int64(max(timeoutSeconds, 0)) * 1_000_000_000
        let ask: PendingAsk = monitor.withLock {
            let id = String(nextID)
            nextID += 1
            let a = PendingAsk(id: id, source: source, service: service, requestedTarget: requestedTarget,
                               choices: choices, defaultTarget: defaultTarget, secondsLeft: timeoutSeconds)
            entries[id] = Entry(ask: a, deadlineNs: deadline, answer: nil)
            order.append(id)
            return a
        }
        onNew?(ask)
        return monitor.withLock {
            defer { entries[ask.id] = nil; order.removeAll { $0 == ask.id } }
            while entries[ask.id]?.answer == nil {
                if !monitor.wait(untilNs: deadline), Monitor.nowNs() >= deadline { break }
            }
            return entries[ask.id]?.answer
        }
    }

    var pending: [PendingAsk] {
        monitor.withLock {
            let now = Monitor.nowNs()
            return order.compactMap { id in
                guard let e = entries[id], e.answer == nil else { return nil }
                let a = e.ask
                return PendingAsk(id: a.id, source: a.source, service: a.service, requestedTarget: a.requestedTarget,
                                  choices: a.choices, defaultTarget: a.defaultTarget,
                                  secondsLeft: Int(max(0, (e.deadlineNs - now) / 1_000_000_000)))
            }
        }
    }

    /// Records an answer; nil when no such ask is pending (answered, timed out).
    func answer(_ id: String, _ a: AskAnswer) -> PendingAsk? {
        monitor.withLock {
            guard var e = entries[id], e.answer == nil else { return nil }
            e.answer = a
            entries[id] = e
            monitor.broadcast()
            return e.ask
        }
    }
}
