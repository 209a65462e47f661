// Event hooks: an add-on that lists events in its manifest gets on_event
// calls, in odysseyd, for those lifecycle events of every domain. Each
// add-on has one instance (opened with its [addon.NAME] config) and one
// serial queue, so a slow hook delays only itself, never the event bus.
// The set is replaced whole on reload.
import Logging
import PluginABI
import Synchronization

final class AddonHooks: @unchecked Sendable {
    private struct Hook: @unchecked Sendable {   // the instance is used only on its queue
        let name: String
        let events: Set<String>
        let ops: UnsafePointer<ody_addon_ops>
        let instance: OpaquePointer
        let queue: SerialQueue
    }
    private let hooks = Mutex<[Hook]>([])
    private let logger: Logger

    init(events: EventBus, logger: Logger) {
        self.logger = logger
        events.subscribe { [self] e in dispatch(e) }
    }

    /// Opens the hooking add-ons of `backends`; the previous ones are closed.
    func replace(with backends: Backends) {
        var fresh: [Hook] = []
        for p in backends.addonPackages where !p.events.isEmpty {
            guard let f = backends.registry.factory(.addon, p.factory) else { continue }
            let ops = f.ops.assumingMemoryBound(to: ody_addon_ops.self)
            let need = MemoryLayout<ody_addon_ops>.offset(of: \ody_addon_ops.on_event)! + MemoryLayout<UnsafeRawPointer?>.size
            guard Int(f.opsSize) >= need, ops.pointee.on_event != nil, let open = ops.pointee.open else {
                logger.warning("add-on \(p.id) lists events but has no on_event: its hooks are unsupported")
                continue
            }
            let ctx = ServiceContext(source: "addon.\(p.factory)", config: p.config, logger: logger, events: backends.events)
            var instance: OpaquePointer?
            var err = ody_error()
            err.struct_size = UInt32(MemoryLayout<ody_error>.size)
            let rc = p.factory.withCString { name in
                var args = ody_instance_args(struct_size: UInt32(MemoryLayout<ody_instance_args>.size), flags: 0,
                                             host: HostServicesTable.shared, host_ctx: ctx.opaque, instance_name: name)
                return open(&args, &instance, &err)
            }
            guard rc == ODY_OK.rawValue, let instance else {
                logger.error("add-on \(p.id): open for event hooks failed: \(ABIString.read(err.message))")
                continue
            }
            fresh.append(Hook(name: p.id, events: Set(p.events), ops: ops, instance: instance, queue: SerialQueue()))
        }
        let old = hooks.withLock { h in defer { h = fresh }; return h }
        for h in old { h.queue.async { h.ops.pointee.close?(h.instance, 0) } }
    }

    private func dispatch(_ e: HostEvent) {
        guard e.kind == .lifecycle, let name = Self.hookName(e.state) else { return }
        let targets = hooks.withLock { $0.filter { $0.events.contains(name) } }
        for h in targets {
            h.queue.async {
                var ev = ody_event()
                ev.struct_size = UInt32(MemoryLayout<ody_event>.size)
                ev.kind = ODY_EVENT_LIFECYCLE.rawValue
                ev.state = Self.abiState(e.state)
                ABIString.write(e.domain, into: &ev.domain)
                ABIString.write(name, into: &ev.name)
                h.ops.pointee.on_event?(h.instance, &ev, 0)
            }
        }
    }

    static func hookName(_ s: PowerState) -> String? {
        switch s {
        case .running: "domain-running"
        case .paused: "domain-paused"
        case .halted: "domain-halted"
        case .crashed: "domain-crashed"
        default: nil
        }
    }

    static func abiState(_ s: PowerState) -> UInt32 {
        switch s {
        case .running: ODY_STATE_RUNNING.rawValue
        case .paused: ODY_STATE_PAUSED.rawValue
        case .halted: ODY_STATE_HALTED.rawValue
        case .crashed: ODY_STATE_CRASHED.rawValue
        default: ODY_STATE_NA.rawValue
        }
    }
}
