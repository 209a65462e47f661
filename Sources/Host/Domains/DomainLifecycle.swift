// The seam between the Admin API and the code that runs domains: the admin
// methods (admin.vm.Start, ...) call these; DomainRuntime implements them
// with the store, volumes, the vmm backend and the agent.

/// What admin.vm.CurrentState reports.
public struct DomainCurrentState: Sendable, Equatable {
    public var state: PowerState
    public var memoryKiB: UInt64
    public var maxmemKiB: UInt64
    public var cputimeNs: UInt64

    public init(state: PowerState, memoryKiB: UInt64 = 0, maxmemKiB: UInt64 = 0, cputimeNs: UInt64 = 0) {
        self.state = state; self.memoryKiB = memoryKiB; self.maxmemKiB = maxmemKiB; self.cputimeNs = cputimeNs
    }
}

public protocol DomainLifecycle: Sendable {
    /// Starts a halted domain and returns once its agent is ready.
    func start(_ name: String) throws(OdysseyError)
    /// Asks the domain to stop; with `wait`, returns once it is halted.
    func shutdown(_ name: String, wait: Bool) throws(OdysseyError)
    func kill(_ name: String) throws(OdysseyError)
    func pause(_ name: String) throws(OdysseyError)
    func unpause(_ name: String) throws(OdysseyError)
    /// Halted for a domain that is not running (never throws for a known name).
    func powerState(_ name: String) -> PowerState
    func currentState(_ name: String) -> DomainCurrentState
    /// When the running domain was started (UNIX time), nil if halted or
    /// unknown (a domain the daemon adopted at its own start).
    func startTime(_ name: String) -> Double?
}

extension DomainLifecycle {
    /// A lifecycle that keeps no start times (test doubles) reports none.
    public func startTime(_ name: String) -> Double? { nil }
}
