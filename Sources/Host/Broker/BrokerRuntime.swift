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
}

extension DomainRuntime: BrokerRuntime {}
#endif
