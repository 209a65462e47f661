// What the broker needs from the code that runs domains: DomainRuntime in
// the daemon; tests may substitute domains whose "agents" are threads.
#if canImport(Qrexec)
public protocol BrokerRuntime: AnyObject, Sendable {
    func powerState(_ name: String) -> PowerState
    /// Starts a halted domain; returns once its agent is ready.
    func start(_ name: String) throws(OdysseyError)
    func kill(_ name: String) throws(OdysseyError)
    func pause(_ name: String) throws(OdysseyError)
    func unpause(_ name: String) throws(OdysseyError)
    /// The control link of a running domain.
    func link(_ name: String) throws(OdysseyError) -> AgentLink
    /// Sleeps until `name` is halted (someone else is stopping it) or
    /// `timeoutMs` passes; true when halted. Never polls.
    func waitUntilHalted(_ name: String, timeoutMs: Int) -> Bool
}

extension BrokerRuntime {
    /// For runtimes with no stop event of their own: a domain whose link has
    /// closed is taken as halted (the link closes when the domain stops).
    public func waitUntilHalted(_ name: String, timeoutMs: Int) -> Bool {
        if powerState(name) == .halted { return true }
        if let l = try? link(name) { l.waitClosed(timeoutMs: timeoutMs) }
        return powerState(name) == .halted
    }
}

extension DomainRuntime: BrokerRuntime {}
#endif
