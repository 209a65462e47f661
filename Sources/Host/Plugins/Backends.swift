// The loaded plugins plus the backend instances opened from them. Instances
// open lazily, on first use, with their [kind.name] config section, so a
// machine without Xen still runs when the Xen plugin is merely loaded.
import Logging
import PluginABI
import Synchronization

public final class Backends: @unchecked Sendable {
    public let registry: PluginRegistry
    public let config: OdysseyConfig
    let logger: Logger
    let events: EventBus
    private let vmms = Mutex<[String: VmmBackend]>([:])
    private let vchans = Mutex<[String: VchanBackend]>([:])
    /// The loaded add-ons as packages (AddonPackages.swift), made once: the
    /// view, the event hooks and `ody addons` all read this one list.
    public private(set) var addonPackages: [AddonPackage] = []

    public init(registry: PluginRegistry, config: OdysseyConfig, logger: Logger, events: EventBus) {
        self.registry = registry
        self.config = config
        self.logger = logger
        self.events = events
        addonPackages = makeAddonPackages()
    }

    /// Loads every plugin in the configured directories.
    public static func load(config: OdysseyConfig, logger: Logger, events: EventBus) -> Backends {
        let reg = PluginLoader(logger: logger, events: events).loadAll(from: config.pluginDirs)
        return Backends(registry: reg, config: config, logger: logger, events: events)
    }

    /// Backend config sections checked against the keys each factory's
    /// manifest declares. A section for a factory no loaded plugin provides is
    /// reported as a warning (its plugin may simply have been refused).
    public func checkBackendConfig() -> (errors: [String], warnings: [String]) {
        var errors: [String] = [], warnings: [String] = []
        for kind in InterfaceKind.allCases {
            let role = config.role(kind)
            if let d = role.defaultFactory, registry.factory(kind, d) == nil {
                warnings.append("\(config.path): \(kind.rawValue).default: no loaded plugin provides \(kind.rawValue) factory '\(d)'")
            }
            for (name, keys) in role.sections.sorted(by: { $0.key < $1.key }) {
                guard let mf = registry.manifestFactory(kind, name) else {
                    warnings.append("\(config.path): [\(kind.rawValue).\(name)]: no loaded plugin provides this factory; section ignored")
                    continue
                }
                let known = Set((mf.config ?? [:]).keys)
                for k in keys.keys.sorted() where !known.contains(k) {
                    let list = known.isEmpty ? "it takes no keys" : "known: \(known.sorted().joined(separator: ", "))"
                    errors.append("\(config.path): [\(kind.rawValue).\(name)] \(k): unknown key (\(list))")
                }
            }
        }
        return (errors, warnings)
    }

    /// The config a factory instance sees: manifest defaults, then the file.
    /// Keys the manifest declares as `"type": "path"` are resolved against
    /// the config file's directory, like the daemon's own paths.
    func instanceConfig(_ kind: InterfaceKind, _ name: String) -> [String: String] {
        var values: [String: String] = [:]
        let declared = registry.manifestFactory(kind, name)?.config ?? [:]
        for (k, v) in declared { if let d = v.default { values[k] = d } }
        let base = Path.dirname(config.path)
        for (k, v) in config.role(kind).sections[name] ?? [:] {
            values[k] = declared[k]?.type == "path" && !v.hasPrefix("/") && !v.isEmpty ? Path.resolve(v, relativeTo: base) : v
        }
        return values
    }

    public var defaultVmmName: String? { config.role(.vmm).defaultFactory }

    /// The vmm instance `name` (nil = the configured default), opened on first use.
    public func vmm(_ name: String? = nil) throws(OdysseyError) -> VmmBackend {
        guard let name = name ?? defaultVmmName else { throw OdysseyError(.config, "no default vmm configured ([vmm] default = \"NAME\")") }
        let result: Result<VmmBackend, OdysseyError> = vmms.withLock { open in
            if let v = open[name] { return .success(v) }
            guard let f = registry.factory(.vmm, name) else {
                let refused = registry.refused.map(\.line).joined(separator: "; ")
                return .failure(OdysseyError(.notFound, "no loaded plugin provides vmm '\(name)'" + (refused.isEmpty ? "" : " (refused: \(refused))")))
            }
            let ctx = ServiceContext(source: "vmm.\(name)", config: instanceConfig(.vmm, name), logger: logger, events: events)
            do throws(OdysseyError) {
                let v = try VmmBackend(factory: f, context: ctx)
                open[name] = v
                return .success(v)
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    public var defaultVchanName: String? { config.role(.vchan).defaultFactory }

    /// The vchan instance `name` (nil = the configured default), opened on first use.
    public func vchan(_ name: String? = nil) throws(OdysseyError) -> VchanBackend {
        guard let name = name ?? defaultVchanName else { throw OdysseyError(.config, "no default vchan configured ([vchan] default = \"NAME\")") }
        let result: Result<VchanBackend, OdysseyError> = vchans.withLock { open in
            if let v = open[name] { return .success(v) }
            guard let f = registry.factory(.vchan, name) else {
                let refused = registry.refused.map(\.line).joined(separator: "; ")
                return .failure(OdysseyError(.notFound, "no loaded plugin provides vchan '\(name)'" + (refused.isEmpty ? "" : " (refused: \(refused))")))
            }
            let ctx = ServiceContext(source: "vchan.\(name)", config: instanceConfig(.vchan, name), logger: logger, events: events)
            do throws(OdysseyError) {
                let v = try VchanBackend(factory: f, context: ctx)
                open[name] = v
                return .success(v)
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The vchan `domain` talks through, and its channel as that backend
    /// describes it: the first vchan in `[vchan] prefer` (then the default,
    /// then any other loaded one) that opens here and whose channel kind the
    /// domain's provider can wire (its ODY_VMM_CAP_CHANNEL_* bits; a provider
    /// declaring none wires a socket directory, as every 1.1 provider did).
    /// So vsock is used where /dev/vhost-vsock exists (its backend refuses
    /// to open elsewhere) and virtio-serial otherwise, with no provider's
    /// name in this path.
    public func vchan(for domain: String, vmm: VmmBackend) throws(OdysseyError) -> (VchanBackend, DomainDescriptionSpec.Channel) {
        let role = config.role(.vchan)
        var order = role.prefer
        if let d = role.defaultFactory, !order.contains(d) { order.append(d) }
        for f in registry.factories(.vchan).map(\.name).sorted() where !order.contains(f) { order.append(f) }
        let channelBits = ODY_VMM_CAP_CHANNEL_SOCKET_DIR | ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL | ODY_VMM_CAP_CHANNEL_VSOCK | ODY_VMM_CAP_CHANNEL_XEN
        let wires = vmm.capabilities & channelBits == 0 ? ODY_VMM_CAP_CHANNEL_SOCKET_DIR : vmm.capabilities & channelBits
        var tried: [String] = []
        for name in order where registry.factory(.vchan, name) != nil {
            let backend: VchanBackend
            do { backend = try vchan(name) } catch { tried.append("\(name): \(error.message)"); continue }
            let channel: DomainDescriptionSpec.Channel
            do { channel = try backend.describeDomain(domain) } catch {
                // A 1.1 vchan without describe_domain serves a socket directory.
                guard error.code == .unsupported else { tried.append("\(name): \(error.message)"); continue }
                channel = .init(kind: .socketDir, path: Path.join(instanceConfig(.vchan, name)["socket_dir"] ?? "/run/odyssey/vchan", domain))
            }
            if wires & channel.kind.capability != 0 { return (backend, channel) }
            tried.append("\(name): its \(channel.kind.word) channel is not one vmm '\(vmm.factory.name)' can wire")
        }
        throw OdysseyError(.unsupported, "no vchan for \(domain) on vmm '\(vmm.factory.name)'"
                           + (tried.isEmpty ? ": no vchan plugin is loaded" : " (" + tried.joined(separator: "; ") + ")"))
    }

    /// Names of vmm instances opened so far.
    public var openVmms: [String] {
        vmms.withLock { $0.keys.sorted() }
    }

    public func closeAll() {
        let all = vmms.withLock { open in defer { open.removeAll() }; return Array(open.values) }
        for v in all { v.close() }
    }
}
