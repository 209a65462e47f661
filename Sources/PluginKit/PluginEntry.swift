// The entry handshake and the factory table, once for every Swift plugin.
// A plugin keeps one `PluginEntry` in a global and its exported symbol is
//
//   @_cdecl("odyssey_plugin_entry")
//   public func odysseyPluginEntry(_ request: ..., _ info: ..., _ err: ...) -> Int32 {
//       entry.answer(request, info, err)
//   }
//
// Nothing here is generic over a plugin's types or thrown: type metadata and
// conformances reached through the GOT put local symbols into a plugin's
// .dynsym (check with `nm -D --defined-only lib<plugin>.so`).
import PluginABI

/// One factory: the ody_factory the host reads, with its name and ops
/// static for the life of the process.
public enum Factory {
    /// An ody_factory of `kind` named `name` (copied into an immortal C string).
    public static func describe(kind: ody_interface_kind, name: String, capabilities: UInt64,
                                ops: UnsafeRawPointer) -> ody_factory {
        ody_factory(struct_size: UInt32(MemoryLayout<ody_factory>.size), kind: kind.rawValue,
                    name: immortalCString(name), capabilities: capabilities, ops: ops)
    }

    /// The immortal `const ody_factory *const *` table ody_plugin_info points at.
    public static func table(_ factories: [ody_factory]) -> UnsafePointer<UnsafePointer<ody_factory>?> {
        let t = UnsafeMutablePointer<UnsafePointer<ody_factory>?>.allocate(capacity: max(factories.count, 1))
        t.initialize(to: nil)
        for (i, f) in factories.enumerated() {
            let p = UnsafeMutablePointer<ody_factory>.allocate(capacity: 1)
            p.initialize(to: f)
            (t + i).initialize(to: UnsafePointer(p))
        }
        return UnsafePointer(t)
    }
}

/// A plugin's answer to the entry handshake: its identity and factories,
/// made once (a plugin's global) and handed out for the process lifetime.
public final class PluginEntry: @unchecked Sendable {
    private let name: String
    private let id: UnsafePointer<CChar>
    private let version: UnsafePointer<CChar>
    private let license: UnsafePointer<CChar>
    private let description: UnsafePointer<CChar>
    private let factories: UnsafePointer<UnsafePointer<ody_factory>?>
    private let factoryCount: UInt32

    public init(id: String, version: String, license: String, description: String, factories: [ody_factory]) {
        self.name = id
        self.id = immortalCString(id)
        self.version = immortalCString(version)
        self.license = immortalCString(license)
        self.description = immortalCString(description)
        self.factories = Factory.table(factories)
        self.factoryCount = UInt32(factories.count)
    }

    /// The whole handshake: request and info struct sizes, ABI major, request
    /// flags, then info filled with min(host's minor, ours).
    public func answer(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                       _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        guard let request, let info else { return fail(err, ODY_E_INVALID, "entry: NULL request or info") }
        let needReq = MemoryLayout<ody_entry_request>.offset(of: \ody_entry_request.flags)! + MemoryLayout<UInt32>.size
        guard Int(request.pointee.struct_size) >= needReq else {
            return fail(err, ODY_E_ABI, "entry: request struct_size \(request.pointee.struct_size) too small")
        }
        guard request.pointee.abi_major == ODY_ABI_MAJOR else {
            return fail(err, ODY_E_ABI, "\(name) speaks ABI major \(ODY_ABI_MAJOR), host offers \(request.pointee.abi_major)")
        }
        if let rc = checkFlags(request.pointee.flags, known: 0, "entry", err) { return rc }
        let needInfo = MemoryLayout<ody_plugin_info>.offset(of: \ody_plugin_info.factories)! + MemoryLayout<UnsafeRawPointer?>.size
        guard Int(info.pointee.struct_size) >= needInfo else {
            return fail(err, ODY_E_ABI, "entry: plugin info struct_size \(info.pointee.struct_size) too small")
        }
        info.pointee.abi_major = ODY_ABI_MAJOR
        info.pointee.abi_minor = min(request.pointee.abi_minor, ODY_ABI_MINOR)
        info.pointee.flags = 0
        info.pointee.id = id
        info.pointee.version = version
        info.pointee.license = license
        info.pointee.description = description
        info.pointee.factory_count = factoryCount
        info.pointee.reserved = 0
        info.pointee.factories = factories
        return ODY_OK.rawValue
    }
}
