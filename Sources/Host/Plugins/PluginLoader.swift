// Finds manifests in the configured plugin directories (sorted), maps each
// library, runs the entry handshake and checks every answer. A plugin that
// fails any check is refused with one line naming the file and the reason;
// the others load regardless.
import FoundationEssentials
import Logging
#if canImport(Glibc)
import Glibc
#endif
import PluginABI

public struct PluginRegistry: Sendable {
    public var loaded: [LoadedPlugin] = []
    public var refused: [RefusedPlugin] = []

    public init() {}

    public func factory(_ kind: InterfaceKind, _ name: String) -> LoadedFactory? {
        for p in loaded { for f in p.factories where f.kind == kind && f.name == name { return f } }
        return nil
    }

    public func factories(_ kind: InterfaceKind) -> [LoadedFactory] {
        loaded.flatMap { $0.factories.filter { $0.kind == kind } }
    }

    public func manifestFactory(_ kind: InterfaceKind, _ name: String) -> PluginManifest.Factory? {
        for p in loaded { for f in p.manifest.factories where f.kind == kind && f.name == name { return f } }
        return nil
    }
}

public struct PluginLoader {
    public static let manifestSuffix = ".json"
    let logger: Logger
    let events: EventBus

    public init(logger: Logger, events: EventBus) {
        self.logger = logger
        self.events = events
    }

    /// Manifest files of every directory, directories in config order, files
    /// sorted by name (directory listings come in random order).
    public static func manifests(in dirs: [String]) -> [String] {
        var out: [String] = []
        for dir in dirs {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for n in names.sorted() where n.hasSuffix(manifestSuffix) && !n.hasPrefix(".") {
                out.append(Path.join(dir, n))
            }
        }
        return out
    }

    public func loadAll(from dirs: [String]) -> PluginRegistry {
        var reg = PluginRegistry()
        for dir in dirs {
            if !Sys.isDirectory(dir) {
                logger.warning("plugin directory \(dir) does not exist; skipped")
            }
        }
        for path in Self.manifests(in: dirs) {
            switch load(manifestPath: path, into: reg) {
            case .success(let p):
                reg.loaded.append(p)
                logger.debug("plugin \(p.id) \(p.version) loaded from \(p.libraryPath)")
            case .failure(let e):
                let r = RefusedPlugin(path: path, reason: e.message)
                reg.refused.append(r)
                logger.error("plugin refused: \(r.line)")
            }
        }
        return reg
    }

    /// Loads one plugin; `registry` holds those already accepted (for duplicates).
    public func load(manifestPath: String, into registry: PluginRegistry) -> Result<LoadedPlugin, OdysseyError> {
        do throws(OdysseyError) { return .success(try loadChecked(manifestPath, registry)) } catch { return .failure(error) }
    }

    private func refuse(_ why: String) -> OdysseyError { OdysseyError(.plugin, why) }

    private func loadChecked(_ manifestPath: String, _ registry: PluginRegistry) throws(OdysseyError) -> LoadedPlugin {
        guard let data = FileManager.default.contents(atPath: manifestPath) else { throw refuse("cannot read manifest") }
        let m = try PluginManifest.decode(data)
        let lib = Path.join(Path.dirname(manifestPath), m.library)

        // Checks that need no code from the plugin come first: nothing of a
        // plugin we would refuse anyway gets to run.
        guard Sys.exists(lib) else { throw refuse("library \(lib) is missing") }
        guard m.abi.major == ODY_ABI_MAJOR else {
            throw refuse("manifest declares ABI major \(m.abi.major); this host speaks ABI \(ODY_ABI_MAJOR)")
        }
        if registry.loaded.contains(where: { $0.id == m.id }) { throw refuse("duplicate plugin id \"\(m.id)\"") }
        for f in m.factories {
            if let other = registry.factory(f.kind, f.name) {
                throw refuse("duplicate \(f.kind.rawValue) factory \"\(f.name)\" (already provided by \(other.pluginID))")
            }
        }

        guard let handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            throw refuse("dlopen failed: \(String(cString: dlerror()))")
        }
        // Never dlclose: Swift plugins crash the host on unload, and code or
        // strings of a plugin may still be referenced. RTLD_NODELETE says so.
        guard let sym = dlsym(handle, ODY_ENTRY_SYMBOL) else {
            throw refuse("library \(lib) has no entry symbol \(ODY_ENTRY_SYMBOL)")
        }
        let entry = unsafeBitCast(sym, to: ody_entry_fn.self)

        let ctx = ServiceContext(source: m.id, config: [:], logger: logger, events: events)
        var request = ody_entry_request(struct_size: UInt32(MemoryLayout<ody_entry_request>.size),
                                        abi_major: ODY_ABI_MAJOR, abi_minor: ODY_ABI_MINOR, flags: 0,
                                        host: HostServicesTable.shared, host_ctx: ctx.opaque)
        var info = ody_plugin_info()
        info.struct_size = UInt32(MemoryLayout<ody_plugin_info>.size)
        var err = ody_error()
        err.struct_size = UInt32(MemoryLayout<ody_error>.size)
        let rc = entry(&request, &info, &err)
        guard rc == ODY_OK.rawValue else {
            let msg = ABIString.read(err.message)
            throw refuse("entry returned \(rc) (\(String(cString: ody_status_name(rc))))" + (msg.isEmpty ? "" : ": \(msg)"))
        }
        return try check(info: info, manifest: m, manifestPath: manifestPath, library: lib)
    }

    /// Everything the entry answered is checked by the host itself, even
    /// what a well-behaved plugin would never get wrong.
    private func check(info: ody_plugin_info, manifest m: PluginManifest, manifestPath: String,
                       library lib: String) throws(OdysseyError) -> LoadedPlugin {
        let needInfo = MemoryLayout<ody_plugin_info>.offset(of: \ody_plugin_info.factories)! + MemoryLayout<UnsafeRawPointer?>.size
        guard Int(info.struct_size) >= needInfo else {
            throw refuse("plugin info struct_size \(info.struct_size) is smaller than the \(needInfo) bytes the host reads")
        }
        guard info.abi_major == ODY_ABI_MAJOR else {
            throw refuse("plugin answered ABI major \(info.abi_major); this host speaks ABI \(ODY_ABI_MAJOR)")
        }
        guard info.abi_minor <= ODY_ABI_MINOR else {
            throw refuse("plugin negotiated ABI minor \(info.abi_minor), above the host's \(ODY_ABI_MINOR)")
        }
        let id = ABIString.read(info.id) ?? ""
        guard id == m.id else { throw refuse("manifest/library mismatch: manifest id \"\(m.id)\", library says \"\(id)\"") }
        guard info.factory_count <= 64, info.factory_count == 0 || info.factories != nil else {
            throw refuse("plugin info lists \(info.factory_count) factories without a valid table")
        }
        var factories: [LoadedFactory] = []
        for i in 0..<Int(info.factory_count) {
            guard let fp = info.factories[i] else { throw refuse("factory \(i) is NULL") }
            let needF = MemoryLayout<ody_factory>.offset(of: \ody_factory.ops)! + MemoryLayout<UnsafeRawPointer?>.size
            guard Int(fp.pointee.struct_size) >= needF else {
                throw refuse("factory \(i) struct_size \(fp.pointee.struct_size) is smaller than the \(needF) bytes the host reads")
            }
            let f = fp.pointee
            guard let kind = InterfaceKind(abi: f.kind) else { throw refuse("factory \(i) has unknown kind \(f.kind)") }
            let name = ABIString.read(f.name, limit: 64) ?? ""
            guard FactoryName.isValid(name) else { throw refuse("factory \(i) has invalid name \"\(name)\"") }
            guard let ops = f.ops else { throw refuse("\(kind.rawValue) factory \"\(name)\" has no ops table") }
            let header = ops.assumingMemoryBound(to: UInt32.self)
            let opsSize = header[0], opsVersion = header[1]
            let minimum = OpsTable.minimumSize
            guard Int(opsSize) >= minimum else {
                throw refuse("\(kind.rawValue) factory \"\(name)\" ops struct_size \(opsSize) is smaller than the \(minimum) bytes every ABI 1.0 table has")
            }
            guard opsVersion <= info.abi_minor else {
                throw refuse("\(kind.rawValue) factory \"\(name)\" ops table is version 1.\(opsVersion), above the negotiated 1.\(info.abi_minor)")
            }
            factories.append(LoadedFactory(kind: kind, name: name, capabilities: f.capabilities, ops: ops,
                                           opsSize: opsSize, opsVersion: opsVersion, pluginID: id))
        }
        let declared = Set(m.factories.map { "\($0.kind.rawValue).\($0.name)" })
        let actual = Set(factories.map(\.qualifiedName))
        guard declared == actual, factories.count == actual.count else {
            throw refuse("manifest/library mismatch: manifest lists factories [\(declared.sorted().joined(separator: ", "))], library provides [\(factories.map(\.qualifiedName).joined(separator: ", "))]")
        }
        for f in factories where f.kind == .addon {
            if let mf = m.factories.first(where: { $0.kind == .addon && $0.name == f.name }),
               let why = AddonDescribe.mismatch(f, manifest: mf) { throw refuse(why) }
        }
        return LoadedPlugin(manifestPath: manifestPath, libraryPath: lib, manifest: m, id: id,
                            version: ABIString.read(info.version) ?? "", license: ABIString.read(info.license) ?? "",
                            description: ABIString.read(info.description) ?? "",
                            abiMajor: info.abi_major, abiMinor: info.abi_minor, factories: factories)
    }
}

/// Every ABI 1.0 ops table starts with struct_size, version, open and close.
/// A table smaller than that is refused; slots past a larger table's
/// struct_size are simply "unsupported" (see BackendCall).
enum OpsTable {
    static let minimumSize = 8 + 2 * MemoryLayout<UnsafeRawPointer?>.size
}
