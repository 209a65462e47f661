// The live qrexec policy of the daemon: loaded from the runtime directory
// (<state_dir>/policy.d, wins a basename clash) and the configured policy
// directories; swapped atomically on reload. A policy that fails to load is
// replaced by one that denies everything and carries the error (fail closed),
// until a good one loads.
import Logging
import Policy
import Synchronization

public final class PolicyService: Sendable {
    public let directories: [String]
    let logger: Logger
    private let current: Mutex<Policy>
    /// What was on disk just before the live policy was read (taken first, so
    /// a change during the load shows as a difference next time).
    private let loadedFrom = Mutex<PolicyFingerprint?>(nil)
    /// Domain facts the policy decides on (from the domain store).
    private let systemProvider: @Sendable () -> PolicySystem

    public init(directories: [String], logger: Logger, system: @escaping @Sendable () -> PolicySystem) {
        self.directories = directories
        self.logger = logger
        self.systemProvider = system
        current = Mutex(Policy.denyAll)
        reload(reason: "start")
    }

    public var policy: Policy { current.withLock { $0 } }
    public var system: PolicySystem { systemProvider() }

    /// Loads the files again and swaps the policy in one step; calls already
    /// deciding keep the policy they started with.
    public func reload(reason: String) {
        let disk = PolicyFingerprint.of(directories)
        let p = Policy.loadOrDenyAll(directories: directories)
        current.withLock { $0 = p }
        loadedFrom.withLock { $0 = disk }
        if let e = p.loadError {
            logger.error("policy (\(reason)): \(e.description); DENYING ALL CALLS until it is fixed")
        } else {
            logger.info("policy (\(reason)): \(p.ruleCount) rules from \(directories.joined(separator: ", "))")
        }
    }

    /// Reloads if the files on disk are not those the live policy was read
    /// from (`ody policy check` reports what is on disk, never a stale policy).
    public func reloadIfChanged(reason: String) {
        let disk = PolicyFingerprint.of(directories)
        if loadedFrom.withLock({ $0 != disk }) { reload(reason: reason) }
    }

    public func evaluate(_ request: PolicyRequest) -> Decision {
        policy.evaluate(request, in: systemProvider())
    }

    /// One line for `ody status`.
    public var statusLine: String {
        let p = policy
        if let e = p.loadError { return "NOT LOADED, denying all calls: \(e.description)" }
        return "\(p.ruleCount) rules loaded"
    }
}
