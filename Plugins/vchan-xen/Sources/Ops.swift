// The ody_vchan_ops slots: argument checks, then XenBackend / XenChannel.
import Glibc
import PluginABI
import PluginKit
import VchanSocketCore
import XenVchanCore

func checkFlags(_ flags: UInt32, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
    let rc = ody_check_flags(flags, 0, err)
    if rc == ODY_OK.rawValue { return nil }
    return fail(err, rc, "\(op): unknown flag bits 0x\(String(flags, radix: 16))")
}

func xvOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL argument") }
    if let rc = checkFlags(args.pointee.flags, "open", err) { return rc }
    do throws(XenVchanError) {
        out.pointee = Handle.make(try XenBackend.open(host: HostServices(args)))
        return ODY_OK.rawValue
    } catch { return error.report(err) }
}

func xvCloseBackend(_ backend: OpaquePointer?, _ flags: UInt32) {
    Handle.release(backend, as: XenBackend.self)
}

/// The endpoint, checked: Qubes names (the same rule as every vchan), a
/// port 1..65535, two different ends. Ids are resolved by the caller.
struct CheckedEndpoint {
    let local: String, remote: String, port: UInt32
    let localDomid: Int32, remoteDomid: Int32
    var label: String { "\(local)->\(remote):\(port)" }
}

func checkEndpoint(_ ep: UnsafePointer<ody_vchan_endpoint>?, _ op: String) throws(XenVchanError) -> CheckedEndpoint {
    guard let ep else { throw XenVchanError(ODY_E_INVALID, "\(op): NULL endpoint") }
    let need = MemoryLayout<ody_vchan_endpoint>.offset(of: \ody_vchan_endpoint.remote_domain)! + Int(ODY_NAME_MAX)
    guard Int(ep.pointee.struct_size) >= need else {
        throw XenVchanError(ODY_E_ABI, "\(op): endpoint struct_size \(ep.pointee.struct_size) too small")
    }
    let local = FixedCString.read(ep.pointee.local_domain)
    let remote = FixedCString.read(ep.pointee.remote_domain)
    let port = ep.pointee.port
    guard ChannelLayout.isValidDomainName(local), ChannelLayout.isValidDomainName(remote) else {
        throw XenVchanError(ODY_E_INVALID, "\(op): invalid domain name (local \"\(local)\", remote \"\(remote)\")")
    }
    guard local != remote else { throw XenVchanError(ODY_E_INVALID, "\(op): a channel from \(local) to itself is not supported") }
    guard ChannelLayout.isValidPort(port) else { throw XenVchanError(ODY_E_INVALID, "\(op): invalid port \(port) (1..65535)") }
    return CheckedEndpoint(local: local, remote: remote, port: port,
                           localDomid: ep.pointee.local_domid, remoteDomid: ep.pointee.remote_domid)
}

func xvServerInit(_ backend: OpaquePointer?, _ ep: UnsafePointer<ody_vchan_endpoint>?, _ readMin: Int, _ writeMin: Int,
                  _ flags: UInt32, _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "server_init", err) { return rc }
    guard let b = Handle.get(backend, as: XenBackend.self), let out else { return fail(err, ODY_E_INVALID, "server_init: NULL argument") }
    do throws(XenVchanError) {
        let e = try checkEndpoint(ep, "server_init")
        let local = try b.domid(e.localDomid, name: e.local, own: true)
        guard local == b.ownDomid else {
            throw XenVchanError(ODY_E_UNSUPPORTED, "server_init \(e.label): this domain (domid \(b.ownDomid)) serves only its own end, not domid \(local)'s")
        }
        let client = try b.domid(e.remoteDomid, name: e.remote, own: false)
        out.pointee = Handle.make(try b.ends.serve(client: client, port: e.port, readMin: readMin, writeMin: writeMin,
                                              label: "\(e.label) (domid \(client))"))
        return ODY_OK.rawValue
    } catch { return error.report(err) }
}

func xvClientInit(_ backend: OpaquePointer?, _ ep: UnsafePointer<ody_vchan_endpoint>?, _ flags: UInt32,
                  _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "client_init", err) { return rc }
    guard let b = Handle.get(backend, as: XenBackend.self), let out else { return fail(err, ODY_E_INVALID, "client_init: NULL argument") }
    do throws(XenVchanError) {
        let e = try checkEndpoint(ep, "client_init")
        let local = try b.domid(e.localDomid, name: e.local, own: true)
        guard local == b.ownDomid else {
            throw XenVchanError(ODY_E_UNSUPPORTED, "client_init \(e.label): this domain (domid \(b.ownDomid)) connects only as itself, not as domid \(local)")
        }
        let server = try b.domid(e.remoteDomid, name: e.remote, own: false)
        out.pointee = Handle.make(try b.ends.connect(server: server, port: e.port, label: "\(e.label) (server domid \(server))"))
        return ODY_OK.rawValue
    } catch { return error.report(err) }
}

@inline(__always)
func channel(_ ch: OpaquePointer?) -> XenChannel? { Handle.get(ch, as: XenChannel.self) }

func xvRead(_ ch: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ size: Int, _ done: UnsafeMutablePointer<Int>?,
            _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "read", err) { return rc }
    guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "read: NULL argument") }
    done.pointee = 0
    if size == 0 { return ODY_OK.rawValue }
    do throws(XenVchanError) { done.pointee = try c.read(buf!, size); return ODY_OK.rawValue } catch { return error.report(err) }
}

func xvWrite(_ ch: OpaquePointer?, _ buf: UnsafeRawPointer?, _ size: Int, _ done: UnsafeMutablePointer<Int>?,
             _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "write", err) { return rc }
    guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "write: NULL argument") }
    done.pointee = 0
    if size == 0 { return ODY_OK.rawValue }
    do throws(XenVchanError) { done.pointee = try c.write(buf!, size); return ODY_OK.rawValue } catch { return error.report(err) }
}

func xvRecv(_ ch: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ size: Int, _ flags: UInt32,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "recv", err) { return rc }
    guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "recv: NULL argument") }
    if size == 0 { return ODY_OK.rawValue }
    do throws(XenVchanError) { try c.recvAll(buf!, size); return ODY_OK.rawValue } catch { return error.report(err) }
}

func xvSend(_ ch: OpaquePointer?, _ buf: UnsafeRawPointer?, _ size: Int, _ flags: UInt32,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "send", err) { return rc }
    guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "send: NULL argument") }
    if size == 0 { return ODY_OK.rawValue }
    do throws(XenVchanError) { try c.sendAll(buf!, size); return ODY_OK.rawValue } catch { return error.report(err) }
}

func xvWait(_ ch: OpaquePointer?, _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "wait", err) { return rc }
    guard let c = channel(ch) else { return fail(err, ODY_E_INVALID, "wait: NULL channel") }
    do throws(XenVchanError) { try c.wait(); return ODY_OK.rawValue } catch { return error.report(err) }
}

func xvFdForPoll(_ ch: OpaquePointer?, _ fd: UnsafeMutablePointer<Int32>?, _ flags: UInt32,
                 _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "fd_for_poll", err) { return rc }
    guard let c = channel(ch), let fd else { return fail(err, ODY_E_INVALID, "fd_for_poll: NULL argument") }
    fd.pointee = c.eventFD
    return ODY_OK.rawValue
}

func xvIsOpen(_ ch: OpaquePointer?, _ state: UnsafeMutablePointer<UInt32>?, _ flags: UInt32,
              _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "is_open", err) { return rc }
    guard let c = channel(ch), let state else { return fail(err, ODY_E_INVALID, "is_open: NULL argument") }
    state.pointee = c.state.rawValue
    return ODY_OK.rawValue
}

func xvDataReady(_ ch: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?, _ flags: UInt32,
                 _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "data_ready", err) { return rc }
    guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "data_ready: NULL argument") }
    bytes.pointee = c.dataReady
    return ODY_OK.rawValue
}

func xvBufferSpace(_ ch: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?, _ flags: UInt32,
                   _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "buffer_space", err) { return rc }
    guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "buffer_space: NULL argument") }
    bytes.pointee = c.bufferSpace
    return ODY_OK.rawValue
}

func xvClose(_ ch: OpaquePointer?, _ flags: UInt32) {
    guard let c = channel(ch) else { return }
    c.close()
    Handle.release(ch, as: XenChannel.self)
}

/// describe_domain (1.2): nothing to wire; the domain's agent reaches dom0
/// through grant tables, which its provider (vmm-xen) has by being Xen.
func xvDescribeDomain(_ backend: OpaquePointer?, _ domain: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ody_channel_desc>?,
                      _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, "describe_domain", err) { return rc }
    guard Handle.get(backend, as: XenBackend.self) != nil, let domain, let out else {
        return fail(err, ODY_E_INVALID, "describe_domain: NULL argument")
    }
    guard Int(out.pointee.struct_size) >= MemoryLayout<ody_channel_desc>.size else {
        return fail(err, ODY_E_ABI, "describe_domain: out struct_size \(out.pointee.struct_size) too small")
    }
    let name = String(cString: domain)
    guard ChannelLayout.isValidDomainName(name) else { return fail(err, ODY_E_INVALID, "describe_domain: invalid domain name \"\(name)\"") }
    _ = ChannelDescription(kind: .xen).write(to: &out.pointee)
    return ODY_OK.rawValue
}
