// admin.Events: every change and lifecycle event, in one order, to every
// subscriber. Publishing only appends to each subscriber's bounded queue (it
// runs inside the store's commit, under its write lock, which is what orders
// events across threads); each subscriber's own connection thread writes.
// A subscriber whose queue overflows is cut off with a logged reason, so a
// slow reader never holds up the daemon or the other subscribers.
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One event, encoded once for every subscriber:
/// `1\0<subject>\0<event>\0(<key>\0<value>\0)*\0` (subject "" = the system).
struct AdminEvent: Sendable {
    let subject: String
    let name: String
    /// The domain the event is about (filtering by policy); nil for system events.
    let domain: String?
    /// Keyword arguments (filtering: some name other domains).
    let arguments: [(String, String)]
    let bytes: [UInt8]

    init(subject: String, name: String, arguments: [(String, String)] = [], domain: String?) {
        self.subject = subject
        self.name = name
        self.domain = domain
        self.arguments = arguments
        var b: [UInt8] = [UInt8(ascii: "1"), 0]
        b += Array(subject.utf8); b.append(0)
        b += Array(name.utf8); b.append(0)
        for (k, v) in arguments { b += Array(k.utf8); b.append(0); b += Array(v.utf8); b.append(0) }
        b.append(0)
        bytes = b
    }
}

final class EventSubscriber: Sendable {
    let caller: String
    /// Events about this domain only (admin.Events called on a domain); nil: all.
    let onlyDomain: String?
    let stream: AdminStream
    /// A non-blocking pipe: enqueue writes a byte, the serving thread polls the read end.
    let wakeFD: Int32
    private let wakeWriteFD: Int32
    let limit: Int
    private struct Queue { var items: [AdminEvent] = []; var head = 0; var dropped: String? }
    private let queue = Mutex(Queue())

    init(caller: String, onlyDomain: String?, stream: AdminStream, limit: Int) {
        self.caller = caller; self.onlyDomain = onlyDomain; self.stream = stream; self.limit = limit
        var p: [Int32] = [-1, -1]
        if pipe(&p) == 0 {
            for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        }
        wakeFD = p[0]
        wakeWriteFD = p[1]
    }

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
        if wakeWriteFD >= 0 { Glibc.close(wakeWriteFD) }
    }

    /// Appends; returns false when this overflowed the queue (the subscriber is then cut off).
    func enqueue(_ e: AdminEvent) -> Bool {
        if let only = onlyDomain, e.domain != only { return true }
        let ok = queue.withLock { q -> Bool in
            guard q.dropped == nil else { return true }
            if q.items.count - q.head >= limit {
                q.dropped = "event queue full (\(limit) events not yet read)"
                return false
            }
            q.items.append(e)
            return true
        }
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)   // a full pipe already means "wake up"
        return ok
    }

    func take() -> (events: [AdminEvent], dropped: String?) {
        var drain = [UInt8](repeating: 0, count: 512)
        while read(wakeFD, &drain, drain.count) > 0 {}
        return queue.withLock { q in
            let out = Array(q.items[q.head...])
            q.items.removeAll(keepingCapacity: q.items.count < 4096)
            q.head = 0
            return (out, q.dropped)
        }
    }
}

final class EventHub: Sendable {
    let logger: Logger
    let queueLimit: Int
    private struct State {
        var next = 1
        var subscribers: [Int: EventSubscriber] = [:]
        /// The last lifecycle event sent per domain (a halt seen twice is sent once).
        var lastLifecycle: [String: String] = [:]
    }
    private let state = Mutex(State())

    init(logger: Logger, queueLimit: Int) {
        self.logger = logger
        self.queueLimit = queueLimit
    }

    var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    func publish(_ events: [AdminEvent]) {
        state.withLock { st in
            for e in events where e.name == "domain-delete" { st.lastLifecycle[e.domain ?? ""] = nil }
            deliver(events, &st)
        }
    }

    /// Lifecycle events (domain-pre-start, domain-start, domain-shutdown...).
    /// The same event twice in a row for a domain is sent once (a halt or a
    /// pause reported both by the admin handler and by the backend).
    func lifecycle(_ domain: String, _ name: String, _ arguments: [(String, String)] = []) {
        let e = AdminEvent(subject: domain, name: name, arguments: arguments, domain: domain)
        state.withLock { st in
            if st.lastLifecycle[domain] == name { return }
            st.lastLifecycle[domain] = name
            deliver(Self.withFollowers(e), &st)
        }
    }

    /// A power state reported by a backend. Halts, pauses and resumes are
    /// events of their own; a domain seen running that no admin.vm.Start is
    /// starting was started another way (`ody run`, a qrexec call) and gets
    /// its domain-start here. Repeats of the last event are dropped.
    func backendState(_ domain: String, _ power: PowerState) {
        let name: String
        switch power {
        case .halted, .crashed: name = "domain-shutdown"
        case .paused: name = "domain-paused"
        case .running: name = "running"
        default: return
        }
        state.withLock { st in
            var event = name
            if name == "running" {
                switch st.lastLifecycle[domain] {
                case "domain-paused": event = "domain-unpaused"
                case "domain-pre-start", "domain-spawn", "domain-start", "domain-unpaused": return
                default: event = "domain-start"
                }
            }
            if st.lastLifecycle[domain] == event { return }
            st.lastLifecycle[domain] = event
            // Started another way: qubesd's domain-spawn comes before domain-start.
            let spawn = event == "domain-start" ? Self.spawned(domain) : []
            deliver(spawn + Self.withFollowers(AdminEvent(subject: domain, name: event, domain: domain)), &st)
        }
    }

    /// qubesd fires domain-stopped right after domain-shutdown (its tools,
    /// qvm-start-daemon among them, wait for either).
    /// qubesd then announces that the live properties changed (property-reset:xid, :start_time).
    private static func withFollowers(_ e: AdminEvent) -> [AdminEvent] {
        guard e.name == "domain-shutdown", let d = e.domain else { return e.name == "domain-spawn" ? spawned(e.domain ?? "") : [e] }
        return [e, AdminEvent(subject: d, name: "domain-stopped", domain: d)] + liveResets(d)
    }

    /// domain-spawn as qubesd sends it: once the domain exists, its xid and
    /// start_time are announced (property-reset), then domain-spawn.
    static func spawned(_ d: String) -> [AdminEvent] {
        liveResets(d) + [AdminEvent(subject: d, name: "domain-spawn", domain: d)]
    }

    static func liveResets(_ d: String) -> [AdminEvent] {
        ["xid", "start_time"].map { AdminEvent(subject: d, name: "property-reset:\($0)", arguments: [("name", $0)], domain: d) }
    }

    private func deliver(_ events: [AdminEvent], _ st: inout State) {
        for (id, s) in st.subscribers {
            for e in events where !s.enqueue(e) {
                logger.warning("admin.Events: disconnecting subscriber \(s.caller): event queue full (\(s.limit) events not read)")
                st.subscribers[id] = nil
                s.stream.cut()
                break
            }
        }
    }

    /// Subscriptions a domain other than dom0 may hold at once: each holds a
    /// daemon thread for as long as it lasts, so a domain's count is bounded
    /// (issue 11, finding 16). dom0's are bounded by the admin socket's cap.
    static let maxPerDomainCaller = 16

    /// Serves one subscriber on the calling thread until it disconnects or
    /// falls behind: `connection-established` first, then every event in order.
    /// `filter` drops the events the caller may not see (nil: sees all).
    /// Throws, before anything is sent, when the caller already holds its
    /// share of subscriptions.
    func serve(caller: String, onlyDomain: String?, stream: AdminStream,
               filter: (@Sendable ([AdminEvent]) -> [AdminEvent])?) throws(AdminError) {
        let sub = EventSubscriber(caller: caller, onlyDomain: onlyDomain, stream: stream, limit: queueLimit)
        guard sub.wakeFD >= 0 else { logger.error("admin.Events: cannot create a wake-up pipe"); return }
        let limit = caller == AdminPermission.adminDomain ? Int.max : EventHub.maxPerDomainCaller
        let id = state.withLock { st -> Int? in
            guard st.subscribers.values.count(where: { $0.caller == caller }) < limit else { return nil }
            let id = st.next
            st.next += 1
            st.subscribers[id] = sub
            return id
        }
        guard let id else {
            logger.warning("admin.Events: refused a subscription from \(caller): \(limit) already open")
            throw AdminError("QubesException", "too many admin.Events subscriptions open from \(caller) (\(limit))")
        }
        defer { state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        guard stream.send(AdminEvent(subject: "", name: "connection-established", domain: nil).bytes) else { return }
        var fds = [pollfd(fd: sub.wakeFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stream.fd, events: 0, revents: 0)]   // POLLHUP/POLLERR: the peer is gone
        while true {
            fds[0].revents = 0; fds[1].revents = 0
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { return }
            let (events, dropped) = sub.take()
            if let dropped { logger.info("admin.Events: \(caller) disconnected: \(dropped)"); return }
            let visible = filter.map { $0(events) } ?? events
            if visible.isEmpty { continue }
            var out: [UInt8] = []
            out.reserveCapacity(visible.reduce(0) { $0 + $1.bytes.count })
            for e in visible { out += e.bytes }
            guard stream.send(out) else { return }
        }
    }
}

extension AdminEvent {
    /// The store's change records as Admin API events (qubesd names and arguments).
    init(_ r: ChangeRecordView) {
        switch r.eventName {
        case "domain-add", "domain-delete":
            self.init(subject: "", name: r.eventName, arguments: r.arguments, domain: r.domain)
        default:
            self.init(subject: r.domain ?? "", name: r.eventName, arguments: r.arguments, domain: r.domain)
        }
    }
}

/// The part of a ChangeRecord events need (keeps this file free of the store).
struct ChangeRecordView {
    let domain: String?
    let eventName: String
    let arguments: [(String, String)]
}
