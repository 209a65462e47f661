// The qrexec broker (issue 5): every service request a domain's agent sends
// (MSG_TRIGGER_SERVICE3/4) ends here, already validated by MessageRules,
// with the source taken from the link it arrived on (never a message field).
//
//   request   names re-checked and sanitised (qrexec-policy.md section 6);
//             at most 256 pending calls per source, beyond that refused.
//   decide    the policy engine (source = the link's domain, target as the
//             caller wrote it); ask -> a pending ask (answer or timeout).
//   deny      MSG_SERVICE_REFUSED{ident}: the caller exits 126.
//   allow     dom0      -> a service run on the host (HostServices)
//             @dispvm:T -> a new (or preloaded) disposable (Disposables)
//             name      -> started first if halted and autostart allows
//             then a socketpair: one end to the target's agent with
//             MSG_EXEC_CMDLINE "user:QUBESRPC SERVICE+ARG SOURCE uuid:UUID", the other to
//             the caller's agent with MSG_SERVICE_CONNECT (cmdline = ident).
//             The agents talk directly; the host is out of the data path.
//
// Each call runs on a worker of a FairScheduler (bounded, round-robin over
// sources), so a slow start or a flood from one domain holds up no other.
// An ask holds no worker: the call is parked in the AskTable (at most
// [limits] asks_per_source per source) and scheduled again once answered.
// A call allowed but refused by a limit ([limits]: disposables, memory)
// ends with the reason on the caller's stderr and exit 125.
#if canImport(Qrexec)
import Domains
import Logging
import Policy
import Qrexec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class Broker: @unchecked Sendable {
    public static let maxPendingPerSource = 256
    /// How long a call waits for its target's agent (start included).
    public static let startTimeoutMs = 60_000

    let runtime: BrokerRuntime
    let store: DomainStore
    let policyService: @Sendable () -> PolicyService
    public let disposables: Disposables
    public let hostServices: HostServices
    let askTimeoutSeconds: @Sendable () -> Int
    let logger: Logger
    let scheduler: FairScheduler
    let asks = AskTable()
    private let pendingBySource = Mutex<[String: Int]>([:])
    private let starting = Monitor()
    private var startingNames: Set<String> = []
    private let hostPort = Atomic<UInt32>(0)
    private let counters = Mutex(Counters())
    private let limitsSource = Mutex<@Sendable () -> ResourceLimits>({ .defaults })
    /// Where [limits] comes from (the daemon: its current config).
    public func setLimits(_ source: @escaping @Sendable () -> ResourceLimits) { limitsSource.withLock { $0 = source } }
    var limits: ResourceLimits { limitsSource.withLock { $0 }() }

    /// Totals since start (tests, `ody status`).
    public struct Counters: Sendable, Equatable {
        public var received = 0
        public var connected = 0
        public var refused = 0
    }
    public var counts: Counters { counters.withLock { $0 } }

    public init(runtime: BrokerRuntime, store: DomainStore, policy: @escaping @Sendable () -> PolicyService,
                disposables: Disposables, hostServices: HostServices,
                askTimeoutSeconds: @escaping @Sendable () -> Int, logger: Logger,
                maxWorkers: Int = 96, maxWorkersPerSource: Int = 24) {
        self.runtime = runtime
        self.store = store
        self.policyService = policy
        self.disposables = disposables
        self.hostServices = hostServices
        self.askTimeoutSeconds = askTimeoutSeconds
        self.logger = logger
        self.scheduler = FairScheduler(maxWorkers: maxWorkers, maxPerSource: maxWorkersPerSource)
    }

    /// What `DomainRuntime.setTriggerHandler` takes.
    public var triggerHandler: @Sendable (AgentLink, AgentLink.ServiceRequest) -> Void {
        { [weak self] link, request in
            guard let self else { try? link.refuse(ident: request.ident); return }
            self.handle(link, request)
        }
    }

    /// Calls of `source` accepted and not yet connected or refused.
    public func pendingCalls(of source: String) -> Int { pendingBySource.withLock { $0[source] ?? 0 } }

    // MARK: requests

    /// Takes one request (on the link's reader thread: quick, never blocks).
    public func handle(_ link: AgentLink, _ request: AgentLink.ServiceRequest) {
        counters.withLock { $0.received += 1 }
        let source = link.domain   // never request.source: only the channel says who calls
        let ident = request.ident
        guard let checked = Self.check(request) else {
            logger.warning("\(source): malformed service request refused")
            refuse(link, ident, "malformed request")
            return
        }
        let admitted: Bool = pendingBySource.withLock { p in
            let n = p[source] ?? 0
            guard n < Self.maxPendingPerSource else { return false }
            p[source] = n + 1
            return true
        }
        guard admitted else {
            logger.warning("\(source): \(Self.maxPendingPerSource) calls already pending; \(checked.service) refused")
            refuse(link, ident, "too many pending calls")
            return
        }
        scheduler.submit(source: source) { [self] in
            let parked = process(link, source: source, service: checked.service, target: checked.target, ident: ident)
            if !parked { callEnded(source) }
        }
    }

    /// A call of `source` was connected or refused: no longer pending.
    private func callEnded(_ source: String) {
        pendingBySource.withLock { p in
            let n = (p[source] ?? 1) - 1
            p[source] = n > 0 ? n : nil
        }
    }

    /// Section 6 again (the link already sanitised; a second look is cheap):
    /// service `[A-Za-z0-9_.+-]`, not empty, no leading '+', at most 65000
    /// bytes; target `[A-Za-z0-9_.@:-]`, at most 63; ident `[0-9A-Za-z_.- ]`.
    static func check(_ r: AgentLink.ServiceRequest) -> (service: String, target: String)? {
        let ident = Array(r.ident.utf8)
        guard !ident.isEmpty, ident.count < ServiceParams.size, ident.allSatisfy(Names.isIdentByte) else { return nil }
        do {
            let service = try Names.sanitizeServiceName(Array(r.serviceName.utf8))
            let target = try Names.sanitizeDomainName(Array(r.target.utf8), field: "target")
            return (service, target)
        } catch {
            return nil
        }
    }

    private func refuse(_ link: AgentLink, _ ident: String, _ why: String) {
        counters.withLock { $0.refused += 1 }
        do { try link.refuse(ident: ident) } catch {
            logger.debug("\(link.domain): refusing \(ident) (\(why)): \(error)")
        }
    }

    // MARK: one call

    /// Decides a call; true when it was parked as an ask (it ends later).
    private func process(_ caller: AgentLink, source: String, service: String, target: String, ident: String) -> Bool {
        let policy = policyService()
        let decision = policy.evaluate(PolicyRequest(call: service, source: source, target: target))
        guard decision.resolution == .ask else {
            complete(caller, decision, source: source, service: service, target: target, ident: ident)
            return false
        }
        let cap = limits.asksPerSource
        let parked = asks.park(source: source, service: service, requestedTarget: target, choices: decision.targetsForAsk,
                               defaultTarget: decision.defaultTarget, timeoutSeconds: askTimeoutSeconds(),
                               maxPerSource: cap) { [self] answer in
            // Answered or timed out: the rest of the call goes back to a worker.
            scheduler.submit(source: source) { [self] in
                var d = decision
                switch answer {
                case .allow(let choice)?: d = decision.approving(choice, source: source, in: policy.system)
                case .deny?: d = decision.declined()
                case nil:
                    logger.notice("\(source) -> \(target) \(service): ask not answered in time, refused")
                    d = decision.declined()
                }
                complete(caller, d, source: source, service: service, target: target, ident: ident)
                callEnded(source)
            }
        }
        guard parked != nil else {
            logger.warning("\(source) -> \(target) \(service): \(cap) asks of \(source) already pending (limit asks_per_source); refused")
            fail(caller, ident, "\(cap) calls of \(source) already wait for an answer (limit asks_per_source); \(service) refused",
                 exitCode: 126)
            return false
        }
        return true
    }

    /// Connects (or refuses) a decided call.
    private func complete(_ caller: AgentLink, _ decision: Decision, source: String, service: String, target: String,
                          ident: String) {
        guard decision.resolution == .allow, let final = decision.targetName else {
            logger.info("\(source) -> \(target.isEmpty ? "@default" : target) \(service): refused (\(decision.reason))")
            refuse(caller, ident, decision.reason)
            return
        }
        do {
            try connect(caller, source: source, service: service, requested: target, target: final,
                        user: decision.user, autostart: decision.autostart, ident: ident)
            counters.withLock { $0.connected += 1 }
            logger.debug("\(source) -> \(final) \(service): connected (\(decision.reason))")
        } catch where error.code == .limit {
            logger.warning("\(source) -> \(final) \(service): allowed but refused by a limit: \(error.message)")
            fail(caller, ident, "\(service) to \(final) refused: \(error.message)", exitCode: 125)
        } catch {
            logger.warning("\(source) -> \(final) \(service): allowed but failed: \(error)")
            refuse(caller, ident, error.description)
        }
    }

    /// Ends a call with `message` on the caller's stderr and `exitCode`
    /// (ody-call: 125 qrexec failure, 126 refused); a bare refusal if even
    /// that cannot be set up.
    private func fail(_ caller: AgentLink, _ ident: String, _ message: String, exitCode: Int32) {
        counters.withLock { $0.refused += 1 }
        guard let p = try? Self.socketPair() else { try? caller.refuse(ident: ident); return }
        hostServices.serveFailure(channel: p[1], message: message, exitCode: exitCode)
        defer { Sys.close(p[0]) }
        let port = hostPort.wrappingAdd(1, ordering: .relaxed).newValue
        do { try caller.serviceConnect(ident: ident, connectDomain: 0, port: port, passing: p[0]) } catch {
            logger.debug("\(caller.domain): failing \(ident) (\(message)): \(error)")
        }
    }

    private func connect(_ caller: AgentLink, source: String, service: String, requested: String, target: String,
                         user: String?, autostart: Bool, ident: String) throws(OdysseyError) {
        if target == "dom0" || target == "@adminvm" {
            var p = try Self.socketPair()
            defer { for f in p where f >= 0 { Sys.close(f) } }
            let port = hostPort.wrappingAdd(1, ordering: .relaxed).newValue
            hostServices.serve(channel: p[1], service: service, source: source, requestedTarget: requested)
            p[1] = -1   // HostServices owns it now
            try caller.serviceConnect(ident: ident, connectDomain: 0, port: port, passing: p[0])
            return
        }
        if target.hasPrefix("@dispvm:") {
            let template = String(target.dropFirst("@dispvm:".count))
            let name = try disposables.acquire(template: template, caller: source)
            do {
                let (link, port) = try connectDomain(caller, target: name, user: user, service: service,
                                                     source: source, ident: ident)
                disposables.destroyAfterCall(name, target: link, port: port, caller: caller)
            } catch {
                disposables.destroy(name)
                throw error
            }
            return
        }
        try ensureRunning(target, autostart: autostart)
        _ = try connectDomain(caller, target: target, user: user, service: service, source: source, ident: ident)
    }

    private func connectDomain(_ caller: AgentLink, target: String, user: String?, service: String, source: String,
                               ident: String) throws(OdysseyError) -> (AgentLink, UInt32) {
        let link = try runtime.link(target)
        try link.waitReady(timeoutMs: Self.startTimeoutMs)
        let snap = store.snapshot()
        let u = user ?? (try? snap.property("default_user", of: target).value).flatMap { $0.isEmpty ? nil : $0 } ?? "user"
        let p = try Self.socketPair()
        defer { Sys.close(p[0]); Sys.close(p[1]) }
        // The caller's uuid rides along (`uuid:...`, QREXEC_REMOTE_DOMAIN_UUID in the
        // service) so a service can tell this domain from a later one of the same name.
        let sourceUUID = (try? snap.domain(source).uuid.text).map { " uuid:" + $0 } ?? ""
        let port = try link.exec(user: u, command: "QUBESRPC \(service) \(source)\(sourceUUID)",
                                 connectDomain: UInt32((try? snap.domain(source).qid) ?? 0), passing: p[1])
        try caller.serviceConnect(ident: ident, connectDomain: UInt32((try? snap.domain(target).qid) ?? 0),
                                  port: port, passing: p[0])
        return (link, port)
    }

    static func socketPair() throws(OdysseyError) -> [Int32] {
        var p: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &p) == 0 else {
            throw Sys.error("socketpair for a call")
        }
        return p
    }

    /// Running (or started now, if autostart allows). Concurrent calls to
    /// one halted domain start it once; the others wait for it.
    func ensureRunning(_ name: String, autostart: Bool) throws(OdysseyError) {
        let deadline = Monitor.nowNs() + Int64(Self.startTimeoutMs) * 1_000_000
        while true {
            switch runtime.powerState(name) {
            case .running:
                return
            case .paused:
                guard autostart else { throw OdysseyError(.state, "\(name) is paused and autostart=no") }
                do { try runtime.unpause(name) } catch { if runtime.powerState(name) != .running { throw error } }
                return
            case .halted, .crashed, .na:
                guard autostart else { throw OdysseyError(.state, "\(name) is not running and autostart=no") }
                let mine: Bool = starting.withLock {
                    if startingNames.contains(name) {
                        _ = starting.wait(untilNs: deadline)
                        return false
                    }
                    startingNames.insert(name)
                    return true
                }
                guard mine else { break }
                defer { starting.withLock { startingNames.remove(name); starting.broadcast() } }
                do { try runtime.start(name) } catch {
                    // Someone else (an admin call) may be starting it: wait for that below.
                    let s = runtime.powerState(name)
                    if s != .transient && s != .running { throw error }
                }
            default:
                // Transient (starting elsewhere) or halting: sleep until its
                // agent is ready or its link closes (then until it halted),
                // and look again. Only a runtime with no link yet is polled.
                let left = Int(max(1, (deadline - Monitor.nowNs()) / 1_000_000))
                if let l = try? runtime.link(name) {
                    if (try? l.waitReady(timeoutMs: left)) != nil { return }
                    _ = runtime.waitUntilHalted(name, timeoutMs: min(left, 1000))
                } else {
                    usleep(10_000)
                }
            }
            if Monitor.nowNs() > deadline { throw OdysseyError(.timeout, "\(name) did not start in time") }
        }
    }

    // MARK: asks (the lead's admin methods call these)

    /// Calls waiting for an answer, oldest first (admin.odyssey.policy.Pending).
    public func pending() -> [PendingAsk] { asks.pending }

    /// Allows a pending ask to `target` (nil: its default target). An answer
    /// that is not one of the offered choices refuses the call and throws.
    /// (admin.odyssey.policy.Answer, `ody policy answer ID allow [TARGET]`)
    public func answer(id: String, allow target: String?) throws(OdysseyError) {
        guard let ask = asks.pending.first(where: { $0.id == id }) else {
            throw OdysseyError(.notFound, "no pending ask \(id) (answered or timed out)")
        }
        guard let choice = target ?? ask.defaultTarget else {
            throw OdysseyError(.invalid, "ask \(id) has no default target; name one of: \(ask.choices.joined(separator: ", "))")
        }
        let valid = ask.choices.contains(choice)
        guard asks.answer(id, valid ? .allow(choice) : .deny) != nil else {
            throw OdysseyError(.notFound, "no pending ask \(id) (answered or timed out)")
        }
        if !valid {
            throw OdysseyError(.invalid, "\(choice) is not one of the choices (\(ask.choices.joined(separator: ", "))); the call was refused")
        }
    }

    /// Denies a pending ask (`ody policy answer ID deny`).
    public func deny(id: String) throws(OdysseyError) {
        guard asks.answer(id, .deny) != nil else { throw OdysseyError(.notFound, "no pending ask \(id) (answered or timed out)") }
    }

    /// Prompts on the terminal when the daemon runs in the foreground on one
    /// (stdin is a tty): each ask is printed on stderr, answers are read as
    /// lines `ID allow [TARGET]` or `ID deny`. Does nothing without a tty.
    public func startTerminalPrompt() {
        guard isatty(0) == 1 else { return }
        asks.onNew = { a in
            let dflt = a.defaultTarget.map { " (default \($0))" } ?? ""
            Sys.printError("odysseyd: ask #\(a.id): \(a.source) wants \(a.service) on \(a.requestedTarget.isEmpty ? "@default" : a.requestedTarget); choices: \(a.choices.joined(separator: ", "))\(dflt). Type '\(a.id) allow [TARGET]' or '\(a.id) deny' (\(a.secondsLeft) s)")
        }
        Threads.detach { [weak self] in
            var line: [UInt8] = []
            var b: UInt8 = 0
            while read(0, &b, 1) == 1 {
                if b != 10 { if line.count < 512 { line.append(b) }; continue }
                let words = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
                line.removeAll()
                guard let self, words.count >= 2 else { continue }
                do throws(OdysseyError) {
                    switch words[1] {
                    case "allow": try self.answer(id: words[0], allow: words.count > 2 ? words[2] : nil)
                    case "deny": try self.deny(id: words[0])
                    default: Sys.printError("odysseyd: answer 'ID allow [TARGET]' or 'ID deny'")
                    }
                } catch {
                    Sys.printError("odysseyd: \(error)")
                }
            }
        }
    }
}
#endif
