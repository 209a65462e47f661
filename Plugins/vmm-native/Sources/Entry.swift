// vmm-native: a domain is a process tree in fresh Linux namespaces with an
// overlayfs root, seccomp, cgroup v1 limits and freezer pause.
// This file is the ABI surface: the entry handshake and the ody_vmm_ops table.
// The work is in NativeVMM.swift; the namespace setup in Jailer/jailer.c.
import Glibc
import PluginABI
import PluginKit

private let pluginMinor: UInt32 = 0 // ODY_ABI_MINOR this plugin was written for

private let capabilities: UInt64 = ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_MEMORY_LIMIT
    | ODY_VMM_CAP_NAMESPACES | ODY_VMM_CAP_PERSISTENT

/// Runs an operation on an instance: flags checked, errors turned into codes.
private func call(_ handle: OpaquePointer?, _ flags: UInt32, known: UInt32 = 0, _ err: UnsafeMutablePointer<ody_error>?,
                  _ body: (NativeVMM) throws -> Void) -> Int32 {
    // ODY_F_ASYNC is allowed and ignored: every operation completes before
    // it returns ("may return a sequence number").
    let rc = ody_check_flags(flags, known | UInt32(ODY_F_COMMON_MASK), err)
    if rc != ODY_OK.rawValue { return rc }
    guard let vmm = Handle.get(handle, as: NativeVMM.self) else { return fail(err, ODY_E_INVALID, "native: NULL instance") }
    do {
        try body(vmm)
        return ODY_OK.rawValue
    } catch let e as NativeError {
        return fail(err, e.code, backend: e.backend, e.message)
    } catch {
        return fail(err, ODY_E_BACKEND, "native: \(error)")
    }
}

private func name(_ p: UnsafePointer<CChar>?) throws -> String {
    guard let p else { throw NativeError(ODY_E_INVALID, "native: NULL domain name") }
    return String(cString: p)
}

nonisolated(unsafe) private let vmmOps: UnsafeMutablePointer<ody_vmm_ops> = {
    var ops = ody_vmm_ops()
    ops.struct_size = UInt32(MemoryLayout<ody_vmm_ops>.size)
    ops.version = pluginMinor
    ops.open = { args, out, err in
        guard let args, let out else { return fail(err, ODY_E_INVALID, "native: open needs args and out") }
        guard args.pointee.struct_size >= UInt32(MemoryLayout<ody_instance_args>.size) else {
            return fail(err, ODY_E_ABI, "native: ody_instance_args.struct_size \(args.pointee.struct_size) is smaller than ABI 1.0's")
        }
        let rc = ody_check_flags(args.pointee.flags, 0, err)
        if rc != ODY_OK.rawValue { return rc }
        let instance = args.pointee.instance_name.map { String(cString: $0) } ?? "native"
        do {
            let vmm = try NativeVMM(host: HostServices(args), name: instance)
            out.pointee = Handle.make(vmm)
            return ODY_OK.rawValue
        } catch let e as NativeError {
            return fail(err, e.code, backend: e.backend, e.message)
        } catch {
            return fail(err, ODY_E_BACKEND, "native: \(error)")
        }
    }
    ops.close = { handle, _ in
        guard let vmm = Handle.get(handle, as: NativeVMM.self) else { return }
        vmm.close()
        Handle.release(handle, as: NativeVMM.self)
    }
    ops.define = { h, config, flags, err in
        call(h, flags, err) { vmm in
            guard let config else { throw NativeError(ODY_E_INVALID, "native: define needs a config") }
            guard config.pointee.struct_size >= UInt32(MemoryLayout<ody_domain_config>.size) else {
                throw NativeError(ODY_E_ABI, "native: ody_domain_config.struct_size \(config.pointee.struct_size) is smaller than ABI 1.0's")
            }
            try vmm.define(config)
        }
    }
    ops.undefine = { h, n, flags, err in call(h, flags, err) { try $0.undefine(try name(n)) } }
    ops.start = { h, n, flags, err in call(h, flags, err) { try $0.start(try name(n)) } }
    ops.shutdown = { h, n, flags, err in
        call(h, flags, known: UInt32(ODY_VMM_SHUTDOWN_WAIT), err) {
            try $0.shutdown(try name(n), wait: flags & UInt32(ODY_VMM_SHUTDOWN_WAIT) != 0)
        }
    }
    ops.kill = { h, n, flags, err in call(h, flags, err) { try $0.kill(try name(n)) } }
    ops.pause = { h, n, flags, err in call(h, flags, err) { try $0.pause(try name(n), true) } }
    ops.unpause = { h, n, flags, err in call(h, flags, err) { try $0.pause(try name(n), false) } }
    ops.get_info = { h, n, out, flags, err in
        call(h, flags, err) { vmm in
            guard let out else { throw NativeError(ODY_E_INVALID, "native: get_info needs an output struct") }
            try vmm.info(try name(n), into: out)
        }
    }
    ops.list = { h, buf, size, needed, flags, err in
        var rc: Int32 = ODY_OK.rawValue
        let status = call(h, flags, err) { vmm in
            rc = writeNameList(vmm.names(), into: buf, size: size, needed: needed, err: err)
        }
        return status != ODY_OK.rawValue ? status : rc
    }
    let p = UnsafeMutablePointer<ody_vmm_ops>.allocate(capacity: 1)
    p.initialize(to: ops)
    return p
}()

nonisolated(unsafe) private let factoryTable: UnsafeMutablePointer<UnsafePointer<ody_factory>?> = {
    let f = UnsafeMutablePointer<ody_factory>.allocate(capacity: 1)
    f.initialize(to: ody_factory(struct_size: UInt32(MemoryLayout<ody_factory>.size), kind: ODY_KIND_VMM.rawValue,
                                 name: immortalCString("native"), capabilities: capabilities,
                                 ops: UnsafeRawPointer(vmmOps)))
    let table = UnsafeMutablePointer<UnsafePointer<ody_factory>?>.allocate(capacity: 1)
    table.initialize(to: UnsafePointer(f))
    return table
}()

nonisolated(unsafe) private let pluginID = immortalCString("vmm-native")
nonisolated(unsafe) private let pluginVersion = immortalCString("0.1.0")
nonisolated(unsafe) private let pluginLicense = immortalCString("Apache-2.0")
nonisolated(unsafe) private let pluginDescription = immortalCString(
    "Native isolation: domains as process trees in Linux namespaces (user, pid, mount, net, ipc, uts, cgroup) with an overlayfs root, seccomp, cgroup v1 limits and freezer pause")

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let request, let info else { return fail(err, ODY_E_INVALID, "native: entry needs a request and an info struct") }
    let minRequest = MemoryLayout<ody_entry_request>.offset(of: \ody_entry_request.abi_minor)! + 4
    guard Int(request.pointee.struct_size) >= minRequest else {
        return fail(err, ODY_E_ABI, "native: ody_entry_request.struct_size \(request.pointee.struct_size) is too small")
    }
    guard request.pointee.abi_major == ODY_ABI_MAJOR else {
        return fail(err, ODY_E_ABI, "native: host ABI major \(request.pointee.abi_major), plugin speaks \(ODY_ABI_MAJOR)")
    }
    guard Int(info.pointee.struct_size) >= MemoryLayout<ody_plugin_info>.size else {
        return fail(err, ODY_E_ABI, "native: ody_plugin_info.struct_size \(info.pointee.struct_size) is smaller than ABI 1.0's \(MemoryLayout<ody_plugin_info>.size)")
    }
    var out = ody_plugin_info()
    out.struct_size = UInt32(MemoryLayout<ody_plugin_info>.size)
    out.abi_major = UInt32(ODY_ABI_MAJOR)
    out.abi_minor = min(request.pointee.abi_minor, pluginMinor)
    out.id = pluginID
    out.version = pluginVersion
    out.license = pluginLicense
    out.description = pluginDescription
    out.factory_count = 1
    out.factories = UnsafePointer(factoryTable)
    info.pointee = out
    return ODY_OK.rawValue
}
