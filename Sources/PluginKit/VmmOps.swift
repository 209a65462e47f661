// The one C-callable ody_vmm_ops table of every Swift vmm plugin: NULL
// instances, flags, domain names, struct sizes and caller-owned buffers are
// checked here, once; the work is the plugin's, behind VmmBackendInstance.
// A plugin writes only its `open` (a C function that calls `VmmOps.open`
// with a closure making its instance) and the protocol conformance.
import PluginABI

public typealias ErrorPointer = UnsafeMutablePointer<ody_error>?

/// A domain definition from an ody_domain_config, already checked: struct
/// size, reserved flags, name (see DomainName), NUL-terminated uuid, params
/// ending with a NUL inside params_len. Params are all of them, unknown keys
/// included (a backend ignores what it does not read).
public final class DomainConfig {
    public let name: String
    public let uuid: String
    public let memoryMiB: UInt64
    public let maxmemMiB: UInt64
    public let vcpus: UInt32
    public let params: [String: String]
    /// The provider-neutral description (ABI 1.2); nil from a 1.1 host.
    public let description: DomainDescription?

    public init(name: String, uuid: String, memoryMiB: UInt64, maxmemMiB: UInt64, vcpus: UInt32, params: [String: String],
                description: DomainDescription? = nil) {
        self.name = name; self.uuid = uuid; self.memoryMiB = memoryMiB; self.maxmemMiB = maxmemMiB
        self.vcpus = vcpus; self.params = params; self.description = description
    }
}

/// One open vmm instance. Every method returns ODY_OK or a negative status
/// with `err` already filled (fail(err, ...)); the arguments are checked.
public protocol VmmBackendInstance: AnyObject {
    /// The host services of this instance (close logs ignored flag bits there).
    var host: HostServices { get }
    func define(_ config: DomainConfig, _ err: ErrorPointer) -> Int32
    func undefine(_ name: String, _ err: ErrorPointer) -> Int32
    func start(_ name: String, _ err: ErrorPointer) -> Int32
    func shutdown(_ name: String, wait: Bool, _ err: ErrorPointer) -> Int32
    func kill(_ name: String, _ err: ErrorPointer) -> Int32
    func pause(_ name: String, _ err: ErrorPointer) -> Int32
    func unpause(_ name: String, _ err: ErrorPointer) -> Int32
    /// Fills `out` (a zeroed, full-size ody_domain_info); the caller copies
    /// what lies inside the host's struct_size.
    func info(_ name: String, _ out: inout ody_domain_info, _ err: ErrorPointer) -> Int32
    /// The defined domains' names, sorted.
    func names(_ out: inout [String], _ err: ErrorPointer) -> Int32
    /// Releases the instance's resources; the handle is released after.
    func close()
}

public enum VmmOps {
    public typealias Open = @convention(c) (UnsafePointer<ody_instance_args>?, UnsafeMutablePointer<OpaquePointer?>?,
                                            UnsafeMutablePointer<ody_error>?) -> Int32

    /// A vmm factory: the shared ops table with the plugin's `open`, both
    /// static for the process lifetime.
    public static func factory(_ name: String, capabilities: UInt64, open: Open) -> ody_factory {
        let p = UnsafeMutablePointer<ody_vmm_ops>.allocate(capacity: 1)
        p.initialize(to: ody_vmm_ops(
            struct_size: UInt32(MemoryLayout<ody_vmm_ops>.size), version: ODY_ABI_MINOR,
            open: open, close: vmmClose, define: vmmDefine, undefine: vmmUndefine,
            start: vmmStart, shutdown: vmmShutdown, kill: vmmKill, pause: vmmPause, unpause: vmmUnpause,
            get_info: vmmGetInfo, list: vmmList))
        return Factory.describe(kind: ODY_KIND_VMM, name: name, capabilities: capabilities, ops: UnsafeRawPointer(p))
    }

    /// The body of a plugin's `open`: checks args, out, struct_size and flags,
    /// then `make` builds the instance (or fills `err` and fails), which
    /// becomes the opaque handle (retained until close).
    ///
    /// Make the existential inside `make`, from a `switch` over the plugin's
    /// own result type, as the plugins here do: a plugin function declared
    /// to return `Result<any VmmBackendInstance, ...>` put its conformance's
    /// witness table into the debug build's .dynsym.
    public static func open(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                            _ err: ErrorPointer,
                            _ make: (UnsafePointer<ody_instance_args>) -> Result<any VmmBackendInstance, ReportedError>) -> Int32 {
        guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL args or out") }
        let need = MemoryLayout<ody_instance_args>.offset(of: \ody_instance_args.host_ctx)! + MemoryLayout<UnsafeRawPointer?>.size
        guard Int(args.pointee.struct_size) >= need else {
            return fail(err, ODY_E_ABI, "open: instance args struct_size \(args.pointee.struct_size) is smaller than \(need)")
        }
        if let rc = checkFlags(args.pointee.flags, known: 0, "open", err) { return rc }
        switch make(args) {
        case .success(let v):
            out.pointee = OpaquePointer(Unmanaged<AnyObject>.passRetained(v).toOpaque())
            return ODY_OK.rawValue
        case .failure(let f):
            out.pointee = nil
            return f.status
        }
    }
}

// MARK: the shared slots

/// The instance behind a handle, or nil with `err` filled.
private func instance(_ h: OpaquePointer?, _ op: String, _ err: ErrorPointer) -> (any VmmBackendInstance)? {
    guard let h, let v = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(h)).takeUnretainedValue() as? any VmmBackendInstance else {
        fail(err, ODY_E_INVALID, "\(op): NULL instance")
        return nil
    }
    return v
}

/// The common shape of every name-taking op: check flags, instance and name, then run.
private func withName(_ h: OpaquePointer?, _ namePtr: UnsafePointer<CChar>?, _ flags: UInt32, known: UInt32, _ op: String,
                      _ err: ErrorPointer, _ body: (any VmmBackendInstance, String) -> Int32) -> Int32 {
    if let rc = checkFlags(flags, known: known, op, err) { return rc }
    guard let vmm = instance(h, op, err) else { return ODY_E_INVALID.rawValue }
    switch DomainName.read(namePtr, op, err) {
    case .success(let name): return body(vmm, name)
    case .failure(let f): return f.status
    }
}

private func vmmClose(_ h: OpaquePointer?, _ flags: UInt32) {
    guard let h, let v = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(h)).takeUnretainedValue() as? any VmmBackendInstance else { return }
    if flags & ~ODY_F_COMMON_MASK != 0 { v.host.log(ODY_LOG_WARNING, "close: unknown flag bits 0x\(String(flags, radix: 16)) ignored") }
    v.close()
    Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(h)).release()
}

private func vmmDefine(_ h: OpaquePointer?, _ config: UnsafePointer<ody_domain_config>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    if let rc = checkFlags(flags, known: ODY_F_COMMON_MASK, "define", err) { return rc }
    guard let vmm = instance(h, "define", err) else { return ODY_E_INVALID.rawValue }
    guard let config else { return fail(err, ODY_E_INVALID, "define: NULL config") }
    let c = config.pointee
    let need = MemoryLayout<ody_domain_config>.offset(of: \ody_domain_config.params)! + MemoryLayout<UnsafeRawPointer?>.size
    guard Int(c.struct_size) >= need else {
        return fail(err, ODY_E_ABI, "define: config struct_size \(c.struct_size) is smaller than \(need)")
    }
    if let rc = checkFlags(c.flags, known: 0, "define (config.flags)", err) { return rc }
    let name: String
    switch DomainName.read(field: c.name, "define", err) { case .success(let n): name = n; case .failure(let f): return f.status }
    let uuidBytes: [UInt8] = withUnsafeBytes(of: c.uuid) { Array($0) }
    guard uuidBytes.contains(0) else { return fail(err, ODY_E_INVALID, "define \(name): uuid is not NUL-terminated") }
    if c.params_len > 0 {
        guard let p = c.params, UInt8(bitPattern: p[Int(c.params_len) - 1]) == 0 else {
            return fail(err, ODY_E_INVALID, "define \(name): params must end with a NUL inside params_len")
        }
    }
    let description: DomainDescription?
    do { description = try DomainDescription.read(c) } catch { return fail(err, ODY_E_INVALID, "define \(name): \(error.message)") }
    return vmm.define(DomainConfig(name: name, uuid: FixedCString.read(c.uuid), memoryMiB: c.memory_mib, maxmemMiB: c.maxmem_mib,
                                   vcpus: c.vcpus, params: parseParams(c.params, length: c.params_len),
                                   description: description), err)
}

private func vmmUndefine(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "undefine", err) { v, n in v.undefine(n, err) }
}

private func vmmStart(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "start", err) { v, n in v.start(n, err) }
}

private func vmmShutdown(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK | ODY_VMM_SHUTDOWN_WAIT, "shutdown", err) { v, n in
        v.shutdown(n, wait: flags & ODY_VMM_SHUTDOWN_WAIT != 0, err)
    }
}

private func vmmKill(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "kill", err) { v, n in v.kill(n, err) }
}

private func vmmPause(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "pause", err) { v, n in v.pause(n, err) }
}

private func vmmUnpause(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "unpause", err) { v, n in v.unpause(n, err) }
}

private func vmmGetInfo(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ody_domain_info>?,
                        _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "get_info", err) { v, n in
        guard let out else { return fail(err, ODY_E_INVALID, "get_info \(n): NULL out") }
        let size = Int(out.pointee.struct_size)
        let need = MemoryLayout<ody_domain_info>.offset(of: \ody_domain_info.state)! + MemoryLayout<UInt32>.size
        guard size >= need else { return fail(err, ODY_E_ABI, "get_info \(n): out struct_size \(size) is smaller than \(need)") }
        var full = ody_domain_info()
        full.struct_size = UInt32(MemoryLayout<ody_domain_info>.size)
        let rc = v.info(n, &full, err)
        guard rc == ODY_OK.rawValue else { return rc }
        // Copy only what lies inside the caller's struct_size; keep its size.
        full.struct_size = out.pointee.struct_size
        withUnsafeBytes(of: &full) { src in
            UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: min(size, src.count))
        }
        return rc
    }
}

private func vmmList(_ h: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ needed: UnsafeMutablePointer<Int>?,
                     _ flags: UInt32, _ err: ErrorPointer) -> Int32 {
    if let rc = checkFlags(flags, known: ODY_F_COMMON_MASK, "list", err) { return rc }
    guard let vmm = instance(h, "list", err) else { return ODY_E_INVALID.rawValue }
    var names: [String] = []
    let rc = vmm.names(&names, err)
    guard rc == ODY_OK.rawValue else { return rc }
    return writeNameList(names, into: buf, size: size, needed: needed, err: err)
}
