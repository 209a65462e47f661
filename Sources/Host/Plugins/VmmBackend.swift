// A Swift view of one opened vmm instance (ody_vmm_ops). Every call goes
// through BackendCall, so unsupported slots and errors read the same for
// every backend.
import PluginABI

/// What the host asks a vmm backend to define: the ABI's fixed fields, the
/// provider-neutral description (1.2; nil for a raw definition through
/// admin.odyssey.vmm.Define) and free-form params (see ody_domain_config).
public struct DomainSpec: Sendable, Equatable {
    public var name: String
    public var uuid: String
    public var memoryMiB: UInt64
    public var maxmemMiB: UInt64
    public var vcpus: UInt32
    public var params: [(String, String)]
    public var description: DomainDescriptionSpec?

    public init(name: String, uuid: String = "", memoryMiB: UInt64 = 400, maxmemMiB: UInt64 = 0, vcpus: UInt32 = 2,
                params: [(String, String)] = [], description: DomainDescriptionSpec? = nil) {
        self.name = name; self.uuid = uuid; self.memoryMiB = memoryMiB; self.maxmemMiB = maxmemMiB
        self.vcpus = vcpus; self.params = params; self.description = description
    }

    public static func == (a: DomainSpec, b: DomainSpec) -> Bool {
        a.name == b.name && a.uuid == b.uuid && a.memoryMiB == b.memoryMiB && a.maxmemMiB == b.maxmemMiB
            && a.vcpus == b.vcpus && a.params.elementsEqual(b.params, by: { $0 == $1 }) && a.description == b.description
    }
}

public struct DomainRuntimeInfo: Sendable, Equatable {
    public var name: String
    public var uuid: String
    public var state: PowerState
    public var memoryKiB: UInt64
    public var maxmemKiB: UInt64
    public var cputimeNs: UInt64
    public var vcpus: UInt32
    public var pid: Int32
}

public final class VmmBackend: @unchecked Sendable {
    public let factory: LoadedFactory
    private let ops: UnsafePointer<ody_vmm_ops>
    private let handle: OpaquePointer
    public var label: String { "vmm backend '\(factory.name)'" }

    /// Opens an instance of `factory` with its config section.
    init(factory: LoadedFactory, context: ServiceContext) throws(OdysseyError) {
        precondition(factory.kind == .vmm)
        self.factory = factory
        self.ops = factory.ops.assumingMemoryBound(to: ody_vmm_ops.self)
        let label = "vmm backend '\(factory.name)'"
        let open = try BackendCall.slot(ops, size: factory.opsSize, \.open, operation: "open", backend: label)
        self.handle = try BackendCall.open(open, factory: factory, context: context, label: label)
    }

    private func slot<Fn>(_ p: KeyPath<ody_vmm_ops, Fn?>, _ op: String) throws(OdysseyError) -> Fn {
        try BackendCall.slot(ops, size: factory.opsSize, p, operation: op, backend: label)
    }

    public var capabilities: UInt64 { factory.capabilities }
    public func has(_ capability: UInt64) -> Bool { factory.capabilities & capability == capability }

    public func define(_ spec: DomainSpec, flags: UInt32 = 0) throws(OdysseyError) {
        let fn = try slot(\.define, "define")
        var blob: [UInt8] = []
        for (k, v) in spec.params { blob += Array("\(k)=\(v)".utf8); blob.append(0) }
        var cfg = ody_domain_config()
        // Without a description the config ends at `params` (a 1.1-shaped
        // definition), so a provider cannot mistake "no description" for an
        // empty one.
        cfg.struct_size = UInt32(MemoryLayout<ody_domain_config>.offset(of: \ody_domain_config.volume_count)!)
        guard ABIString.write(spec.name, into: &cfg.name) else { throw OdysseyError(.invalid, "domain name too long: \(spec.name)") }
        ABIString.write(spec.uuid, into: &cfg.uuid)
        cfg.memory_mib = spec.memoryMiB
        cfg.maxmem_mib = spec.maxmemMiB
        cfg.vcpus = spec.vcpus
        cfg.params_len = UInt32(blob.count)
        try OdysseyError.rethrowing {
            try blob.withUnsafeBufferPointer { b in
                cfg.params = b.isEmpty ? nil : UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: CChar.self)
                guard let d = spec.description else {
                    try BackendCall.run("\(label): define \(spec.name)") { fn(handle, &cfg, flags, $0) }
                    return
                }
                try d.withABI(&cfg) { (c: inout ody_domain_config) throws(OdysseyError) in
                    try BackendCall.run("\(label): define \(spec.name)") { fn(handle, &c, flags, $0) }
                }
            }
        }
    }

    private func nameCall(_ p: KeyPath<ody_vmm_ops, (@convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32)?>,
                          _ op: String, _ name: String, flags: UInt32) throws(OdysseyError) {
        let fn = try slot(p, op)
        try OdysseyError.rethrowing {
            try name.withCString { n in try BackendCall.run("\(label): \(op) \(name)") { fn(handle, n, flags, $0) } }
        }
    }

    public func undefine(_ name: String, flags: UInt32 = 0) throws(OdysseyError) { try nameCall(\.undefine, "undefine", name, flags: flags) }
    public func start(_ name: String, flags: UInt32 = 0) throws(OdysseyError) { try nameCall(\.start, "start", name, flags: flags) }
    public func shutdown(_ name: String, wait: Bool = false) throws(OdysseyError) {
        try nameCall(\.shutdown, "shutdown", name, flags: wait ? ODY_VMM_SHUTDOWN_WAIT : 0)
    }
    public func kill(_ name: String, flags: UInt32 = 0) throws(OdysseyError) { try nameCall(\.kill, "kill", name, flags: flags) }
    public func pause(_ name: String, flags: UInt32 = 0) throws(OdysseyError) { try nameCall(\.pause, "pause", name, flags: flags) }
    public func unpause(_ name: String, flags: UInt32 = 0) throws(OdysseyError) { try nameCall(\.unpause, "unpause", name, flags: flags) }

    public func info(_ name: String) throws(OdysseyError) -> DomainRuntimeInfo {
        let fn = try slot(\.get_info, "get_info")
        var out = ody_domain_info()
        out.struct_size = UInt32(MemoryLayout<ody_domain_info>.size)
        try OdysseyError.rethrowing {
            try name.withCString { n in try BackendCall.run("\(label): get_info \(name)") { fn(handle, n, &out, 0, $0) } }
        }
        return DomainRuntimeInfo(name: ABIString.read(out.name), uuid: ABIString.read(out.uuid),
                                 state: PowerState(abi: out.state), memoryKiB: out.memory_kib,
                                 maxmemKiB: out.maxmem_kib, cputimeNs: out.cputime_ns, vcpus: out.vcpus, pid: out.pid)
    }

    public func list() throws(OdysseyError) -> [String] {
        let fn = try slot(\.list, "list")
        var needed = 0
        var size = 4096
        while true {
            var buf = [CChar](repeating: 0, count: size)
            var err = ody_error()
            err.struct_size = UInt32(MemoryLayout<ody_error>.size)
            let rc = fn(handle, &buf, buf.count, &needed, 0, &err)
            if rc == ODY_E_TOO_SMALL.rawValue, needed > size, needed < 64 << 20 { size = needed; continue }
            try BackendCall.run("\(label): list") { e in e.pointee = err; return rc }
            let bytes = buf.prefix(min(needed, buf.count)).map { UInt8(bitPattern: $0) }
            return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    public func close() {
        if let fn = try? slot(\.close, "close") { fn(handle, 0) }
    }
}
