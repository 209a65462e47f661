// The C-callable ops of the "xen" factory: argument checks (struct sizes,
// flags, names) here; the work in XenVmm.
import PluginABI
import PluginKit

typealias ErrPtr = UnsafeMutablePointer<ody_error>?

private func instance(_ h: OpaquePointer?, _ op: String, _ err: ErrPtr) -> Result<XenVmm, ReportedError> {
    guard let v = Handle.get(h, as: XenVmm.self) else { return .failure(ReportedError(fail(err, ODY_E_INVALID, "\(op): NULL instance"))) }
    return .success(v)
}

/// The common shape of every name-taking op: check flags, instance and name, then run.
private func withName(_ h: OpaquePointer?, _ namePtr: UnsafePointer<CChar>?, _ flags: UInt32, known: UInt32, _ op: String,
                      _ err: ErrPtr, _ body: (XenVmm, String) -> Int32) -> Int32 {
    if let rc = checkFlags(flags, known: known, op, err) { return rc }
    let vmm: XenVmm, name: String
    switch instance(h, op, err) { case .success(let v): vmm = v; case .failure(let f): return f.status }
    switch DomainName.read(namePtr, op, err) { case .success(let n): name = n; case .failure(let f): return f.status }
    return body(vmm, name)
}

func xlOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: ErrPtr) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL args or out") }
    let need = MemoryLayout<ody_instance_args>.offset(of: \ody_instance_args.host_ctx)! + MemoryLayout<UnsafeRawPointer?>.size
    guard Int(args.pointee.struct_size) >= need else {
        return fail(err, ODY_E_ABI, "open: instance args struct_size \(args.pointee.struct_size) is smaller than \(need)")
    }
    if let rc = checkFlags(args.pointee.flags, known: 0, "open", err) { return rc }
    switch XenVmm.open(host: HostServices(args), err: err) {
    case .success(let v):
        out.pointee = Handle.make(v)
        return ODY_OK.rawValue
    case .failure(let f):
        out.pointee = nil
        return f.status
    }
}

func xlClose(_ h: OpaquePointer?, _ flags: UInt32) {
    guard let v = Handle.get(h, as: XenVmm.self) else { return }
    if flags & ~ODY_F_COMMON_MASK != 0 { v.host.log(ODY_LOG_WARNING, "close: unknown flag bits 0x\(String(flags, radix: 16)) ignored") }
    v.close()
    Handle.release(h, as: XenVmm.self)
}

func xlDefine(_ h: OpaquePointer?, _ config: UnsafePointer<ody_domain_config>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    if let rc = checkFlags(flags, known: ODY_F_COMMON_MASK, "define", err) { return rc }
    let vmm: XenVmm
    switch instance(h, "define", err) { case .success(let v): vmm = v; case .failure(let f): return f.status }
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
    var params = parseParams(c.params, length: c.params_len)
    for k in params.keys where !XenVmm.knownParams.contains(k) { params[k] = nil }  // the ABI says: ignore unknown keys
    for (k, v) in params where v.utf8.contains(0) {
        return fail(err, ODY_E_INVALID, "define \(name): param \(k) contains a NUL byte")
    }
    let def = XenDefinition(name: name, uuid: FixedCString.read(c.uuid), memoryMiB: c.memory_mib, maxmemMiB: c.maxmem_mib,
                            vcpus: c.vcpus, params: params)
    return vmm.define(def, err)
}

func xlUndefine(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "undefine", err) { v, n in v.undefine(n, err) }
}

func xlStart(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "start", err) { v, n in v.start(n, err) }
}

func xlShutdown(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK | ODY_VMM_SHUTDOWN_WAIT, "shutdown", err) { v, n in
        v.shutdown(n, wait: flags & ODY_VMM_SHUTDOWN_WAIT != 0, err)
    }
}

func xlKill(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "kill", err) { v, n in v.kill(n, err) }
}

func xlPause(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "pause", err) { v, n in v.pause(n, paused: true, err) }
}

func xlUnpause(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "unpause", err) { v, n in v.pause(n, paused: false, err) }
}

func xlGetInfo(_ h: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ody_domain_info>?,
               _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    withName(h, name, flags, known: ODY_F_COMMON_MASK, "get_info", err) { v, n in
        guard let out else { return fail(err, ODY_E_INVALID, "get_info \(n): NULL out") }
        let size = Int(out.pointee.struct_size)
        let need = MemoryLayout<ody_domain_info>.offset(of: \ody_domain_info.state)! + MemoryLayout<UInt32>.size
        guard size >= need else { return fail(err, ODY_E_ABI, "get_info \(n): out struct_size \(size) is smaller than \(need)") }
        var full = ody_domain_info()
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

func xlList(_ h: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ needed: UnsafeMutablePointer<Int>?,
            _ flags: UInt32, _ err: ErrPtr) -> Int32 {
    if let rc = checkFlags(flags, known: ODY_F_COMMON_MASK, "list", err) { return rc }
    switch instance(h, "list", err) {
    case .success(let v): return v.list(buf, size, needed, err)
    case .failure(let f): return f.status
    }
}
