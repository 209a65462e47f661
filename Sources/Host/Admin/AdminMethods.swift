// The admin methods the daemon answers: one table of declared methods (the
// Qubes Admin API under Qubes/, Odyssey's own under admin.odyssey.*).
// Every call goes: permission (policy, for callers other than dom0) ->
// method known -> shape (argument, payload, destination) -> handler.
//
// Where Odyssey differs from qubesd on purpose:
// - PermissionDenied and ProtocolError are sent as error replies (qubesd
//   drops the connection, which its client reports as an empty response).
// - A policy `ask` for an admin method is a deny: there is nobody to ask.
// - admin.vm.Create.* and admin.vm.CreateDisposable tag the new domain
//   created-by-<caller> only for callers other than dom0.
// - A method Odyssey does not implement (admin.vm.volume.Import, backup,
//   Console, pool.Add...) is QubesNotImplementedError, which Qubes' tools
//   report, where qubesd drops the connection (ProtocolError).
// - Devices: Qubes' classes with nothing in them (no domain exposes devices).
// - admin.vm.volume.CloneTo needs a halted destination; a running source's
//   private volume is copied as of its last stop, its root not at all.
// - Events carry qubesd's names and keyword arguments, in qubesd's order
//   (property-pre-set:X before property-set:X, domain-feature-pre-set:X before
//   domain-feature-set:X; domain-pre-start, domain-spawn, domain-start;
//   domain-shutdown, domain-stopped; property-reset:xid and :start_time
//   before domain-spawn and after domain-stopped); domain-pre-start, domain-spawn and
//   domain-start carry no start_guid argument. A domain's subscription does
//   not show events whose arguments name domains it may neither list nor read
//   the property of; a domain holds at most EventHub.maxPerDomainCaller.
// - Methods with CallerRule.adminDomainOnly are refused to every domain
//   whatever the policy grants (raw backend parameters, host paths, answering
//   asks); a clone needs the read right on its source.
// - The destination is resolved once, before the policy (AdminDestination):
//   `uuid:` in any case becomes the name; an unknown one is denied to a domain.
// - Names: stricter than qubesd (reserved words in any case, confusables).
import Domains
import PluginABI

public final class AdminMethods: @unchecked Sendable {
    unowned let daemon: Daemon
    let hub: EventHub
    let permission: AdminPermission
    private var table: [String: AdminMethod] = [:]
    private var storeToken: ObserverToken?
    private var busID: Int?

    /// `eventQueueLimit`: events an admin.Events subscriber may have unread
    /// before it is disconnected.
    public init(daemon: Daemon, eventQueueLimit: Int = 10_000) {
        self.daemon = daemon
        let hub = EventHub(logger: daemon.logger, queueLimit: eventQueueLimit)
        self.hub = hub
        permission = AdminPermission(policy: { [unowned daemon] in daemon.policy })
        let api = QubesAPI(daemon: daemon, hub: hub, permission: permission)
        let all = api.vmMethods() + api.propertyMethods() + api.featureTagMethods() + api.lifecycleMethods()
            + api.storageMethods() + api.volumeCloneMethods() + api.notesFirewallMethods() + api.devicePoolMethods() + api.labelMethods() + [api.eventsMethod()] + api.templateMethods() + odysseyMethods()
        for m in all { table[m.name] = m }

        // Committed changes become events, in commit order (this runs under the store's write lock).
        storeToken = daemon.store.addObserver { records in
            hub.publish(records.flatMap { r in
                let args = r.arguments
                let pre = r.preEventName.map { [AdminEvent(ChangeRecordView(domain: r.domain, eventName: $0, arguments: args))] } ?? []
                return pre + [AdminEvent(ChangeRecordView(domain: r.domain, eventName: r.eventName, arguments: args))]
            })
        }
        // Backends report halts (by itself, or after a shutdown without wait), pauses,
        // and starts that did not go through admin.vm.Start.
        let store = daemon.store
        busID = daemon.events.subscribe { e in
            guard e.kind == .lifecycle, store.snapshot().contains(e.domain) else { return }
            hub.backendState(e.domain, e.state)
        }
    }

    /// Stops turning store changes and backend events into admin events.
    public func close() {
        if let t = storeToken { daemon.store.removeObserver(t); storeToken = nil }
        if let b = busID { daemon.events.unsubscribe(b); busID = nil }
    }

    /// Every declared method name with its policy include file (for policy files and tests).
    var declaredMethods: [(name: String, include: String)] { table.values.map { ($0.name, $0.includeFile) }.sorted { $0.name < $1.name } }

    /// The admin socket: the server has authenticated the peer and set the source to dom0.
    func handle(_ r: AdminRequest) -> AdminResponse {
        handle(r, callerSource: r.source, stream: AdminConnection.current)
    }

    /// A call on behalf of a domain (qrexec): `callerSource` comes from the
    /// channel the call arrived on, never from the request.
    public func handle(_ request: AdminRequest, callerSource: String) -> AdminResponse {
        handle(request, callerSource: callerSource, stream: nil)
    }

    /// As above, with the caller's connection for admin.Events (it blocks,
    /// writing events to `stream`, until the peer hangs up).
    public func handle(_ request: AdminRequest, callerSource: String, stream: AdminStream?) -> AdminResponse {
        var r = request
        r.source = callerSource
        let fromAdmin = callerSource == AdminPermission.adminDomain
        // One spelling of the destination for the policy and the handler alike.
        switch AdminDestination.resolve(r.dest, in: daemon.store.snapshot()) {
        case .domain(let name): r.dest = name
        case .unknown where !fromAdmin:
            daemon.logger.notice("admin: denied \(r.method)+\(r.argument) from \(callerSource) to \(r.dest): names no domain")
            return .failure(.permissionDenied())
        case .unknown where r.dest.hasPrefix("uuid:"):
            return .failure(AdminError("QubesVMNotFoundError", "No such domain: '\(r.dest)'"))
        case .unknown: break   // dom0: the handler says what is wrong with the name
        }
        // Permission before anything else: a denied caller learns nothing about what exists.
        guard permission.allows(method: r.method, argument: r.argument, caller: callerSource, dest: r.dest) else {
            daemon.logger.notice("admin: denied \(r.method)+\(r.argument) from \(callerSource) to \(r.dest)")
            return .failure(.permissionDenied())
        }
        // A QubesException subclass, not ProtocolError: Qubes' tools report it and go on.
        guard let m = table[r.method] else {
            return .failure(AdminError("QubesNotImplementedError", "Method not implemented by Odyssey: \(QubesAPI.shown(r.method))"))
        }
        do throws(AdminError) {
            try m.checkShape(r)
            try m.checkCaller(callerSource)
            return .success(try m.run(AdminCall(request: r, stream: stream)))
        } catch {
            return .failure(error)
        }
    }

    private func odysseyMethods() -> [AdminMethod] {
        [
            AdminMethod(name: "admin.odyssey.Status", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [unowned self] _ in
                JSON.encode(daemon.status())
            },
            AdminMethod(name: "admin.odyssey.Plugins", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [unowned self] _ in
                JSON.encode(PluginReport(registry: daemon.backends.registry, hostABI: "\(ODY_ABI_MAJOR).\(ODY_ABI_MINOR)"))
            },
            // A read-only listing: granted by admin-global-ro.
            AdminMethod("admin.odyssey.Addons", argument: .none, destination: .adminVM, scope: .global, access: .read) { [unowned self] _ in
                let b = daemon.backends
                return JSON.encode(AddonReport(packages: b.addonPackages, policyDirectories: daemon.policy.directories,
                                               refused: b.registry.refused))
            },
        ] + BackendMethods(daemon: daemon).methods() + PolicyMethods(daemon: daemon).methods()
    }
}
