// vmm-native: a domain is a process tree in fresh Linux namespaces with an
// overlayfs root, seccomp, cgroup v1 limits and freezer pause.
// This file is the ABI surface: the entry handshake, the factory's open and
// NativeVMM's VmmBackendInstance conformance (the argument checks and the
// ops table are PluginKit's VmmOps). The work is in NativeVMM.swift; the
// namespace setup in Jailer/jailer.c.
import PluginABI
import PluginKit

private let capabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_MEMORY_LIMIT
    | ODY_VMM_CAP_NAMESPACES | ODY_VMM_CAP_PERSISTENT | ODY_VMM_CAP_CHANNEL_SOCKET_DIR

private let entry = PluginEntry(
    id: "vmm-native", version: "0.1.0", license: "Apache-2.0",
    description: "Native isolation: domains as process trees in Linux namespaces (user, pid, mount, net, ipc, uts, cgroup) with an overlayfs root, seccomp, cgroup v1 limits and freezer pause",
    factories: [VmmOps.factory("native", capabilities: capabilities, open: nativeOpen)])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}

/// Runs a throwing operation: a NativeError becomes its code, backend code
/// (errno) and message; anything else ODY_E_BACKEND.
private func report(_ err: ErrorPointer, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return ODY_OK.rawValue
    } catch let e as NativeError {
        return fail(err, e.code, backend: e.backend, e.message)
    } catch {
        return fail(err, ODY_E_BACKEND, "native: \(error)")
    }
}

private func nativeOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                        _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    VmmOps.open(args, out, err) { args in
        let hasName = Int(args.pointee.struct_size) >= MemoryLayout<ody_instance_args>.offset(of: \ody_instance_args.instance_name)!
            + MemoryLayout<UnsafePointer<CChar>?>.size
        let instance = (hasName ? args.pointee.instance_name : nil).map { String(cString: $0) } ?? "native"
        var vmm: NativeVMM?
        let rc = report(err) { vmm = try NativeVMM(host: HostServices(args), name: instance) }
        guard let vmm else { return .failure(ReportedError(rc)) }
        return .success(vmm)
    }
}

// ODY_F_ASYNC is allowed and ignored: every operation completes before it
// returns ("may return a sequence number").
extension NativeVMM: VmmBackendInstance {
    func define(_ config: DomainConfig, _ err: ErrorPointer) -> Int32 { report(err) { try define(config) } }
    func undefine(_ name: String, _ err: ErrorPointer) -> Int32 { report(err) { try undefine(name) } }
    func start(_ name: String, _ err: ErrorPointer) -> Int32 { report(err) { try start(name) } }
    func shutdown(_ name: String, wait: Bool, _ err: ErrorPointer) -> Int32 { report(err) { try shutdown(name, wait: wait) } }
    func kill(_ name: String, _ err: ErrorPointer) -> Int32 { report(err) { try kill(name) } }
    func pause(_ name: String, _ err: ErrorPointer) -> Int32 { report(err) { try setPaused(name, true) } }
    func unpause(_ name: String, _ err: ErrorPointer) -> Int32 { report(err) { try setPaused(name, false) } }
    func info(_ name: String, _ out: inout ody_domain_info, _ err: ErrorPointer) -> Int32 {
        report(err) { try info(name, into: &out) }
    }
    func names(_ out: inout [String], _ err: ErrorPointer) -> Int32 {
        out = names()
        return ODY_OK.rawValue
    }
}
