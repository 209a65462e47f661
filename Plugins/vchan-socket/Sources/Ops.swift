// The ody_vchan_ops slots: argument checks, then SocketChannel.
import Glibc
import PluginABI
import PluginKit
import VchanSocketCore

/// One opened "socket" instance: its config.
final class SocketBackend {
    let host: HostServices
    let socketDir: String
    let connectTimeoutNs: Int64
    /// Admits only a domain's agent to the channels served in its directory.
    let gate: AgentGate

    init(host: HostServices) {
        self.host = host
        gate = AgentGate { host.log(ODY_LOG_WARNING, $0) }
        socketDir = host.config("socket_dir") ?? ChannelLayout.defaultDirectory
        let ms = host.config("connect_timeout_ms").flatMap { Int64($0) } ?? 5000
        connectTimeoutNs = max(ms, 1) * 1_000_000
    }
}

func map(_ e: VchanError, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    switch e {
    case .invalid(let m): fail(err, ODY_E_INVALID, m)
    case .closed: fail(err, ODY_E_CLOSED, e.description)
    case .timeout(let m): fail(err, ODY_E_TIMEOUT, m)
    case .state(let m): fail(err, ODY_E_STATE, m)
    case .io(_, let code):
        switch code {
        case EACCES, EPERM: fail(err, ODY_E_PERMISSION, backend: code, e.description)
        case ENOENT: fail(err, ODY_E_NOT_FOUND, backend: code, e.description)
        case EADDRINUSE: fail(err, ODY_E_EXISTS, backend: code, e.description)
        case ENOMEM, ENOBUFS: fail(err, ODY_E_NO_MEMORY, backend: code, e.description)
        default: fail(err, ODY_E_IO, backend: code, e.description)
        }
    }
}

func vsOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL argument") }
    if let rc = checkFlags(args.pointee.flags, known: 0, "open", err) { return rc }
    let b = SocketBackend(host: HostServices(args))
    guard b.socketDir.hasPrefix("/") else { return fail(err, ODY_E_INVALID, "socket_dir must be an absolute path: \(b.socketDir)") }
    out.pointee = Handle.make(b)
    return ODY_OK.rawValue
}

func vsCloseBackend(_ backend: OpaquePointer?, _ flags: UInt32) {
    Handle.release(backend, as: SocketBackend.self)
}

/// The endpoint's names and port, checked before they become a path.
func endpointNames(_ ep: UnsafePointer<ody_vchan_endpoint>?, _ op: String,
                   _ err: UnsafeMutablePointer<ody_error>?) -> (value: (String, String, UInt32)?, rc: Int32) {
    guard let ep else { return (nil, fail(err, ODY_E_INVALID, "\(op): NULL endpoint")) }
    let need = MemoryLayout<ody_vchan_endpoint>.offset(of: \ody_vchan_endpoint.remote_domain)! + Int(ODY_NAME_MAX)
    guard Int(ep.pointee.struct_size) >= need else {
        return (nil, fail(err, ODY_E_ABI, "\(op): endpoint struct_size \(ep.pointee.struct_size) too small"))
    }
    let local = FixedCString.read(ep.pointee.local_domain)
    let remote = FixedCString.read(ep.pointee.remote_domain)
    let port = ep.pointee.port
    guard ChannelLayout.isValidDomainName(local), ChannelLayout.isValidDomainName(remote) else {
        return (nil, fail(err, ODY_E_INVALID, "\(op): invalid domain name (local \"\(local)\", remote \"\(remote)\")"))
    }
    guard local != remote else { return (nil, fail(err, ODY_E_INVALID, "\(op): a channel from \(local) to itself is not supported")) }
    guard ChannelLayout.isValidPort(port) else { return (nil, fail(err, ODY_E_INVALID, "\(op): invalid port \(port)")) }
    return ((local, remote, port), ODY_OK.rawValue)
}

/// mkdir that accepts an existing directory.
func ensureDirectory(_ path: String, mode: mode_t) -> VchanError? {
    if mkdir(path, mode) == 0 { _ = chmod(path, mode); return nil }
    if errno == EEXIST { return nil }
    return .io("mkdir \(path)", errno: errno)
}

func vsServerInit(_ backend: OpaquePointer?, _ ep: UnsafePointer<ody_vchan_endpoint>?, _ readMin: Int, _ writeMin: Int,
                  _ flags: UInt32, _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "server_init", err) { return rc }
    guard let b = Handle.get(backend, as: SocketBackend.self), let out else { return fail(err, ODY_E_INVALID, "server_init: NULL argument") }
    let names = endpointNames(ep, "server_init", err)
    guard let v = names.value else { return names.rc }
    let (local, remote, port) = v
    guard local == ChannelLayout.adminDomain || remote == ChannelLayout.adminDomain else {
        return fail(err, ODY_E_UNSUPPORTED, "server_init: channels between two domains are made with fd passing, not by path")
    }
    if local == ChannelLayout.adminDomain {
        if let e = ensureDirectory(b.socketDir, mode: 0o700) { return map(e, err) }
        if let e = ensureDirectory(ChannelLayout.directory(base: b.socketDir, local: local, remote: remote), mode: 0o755) { return map(e, err) }
    }
    let path = ChannelLayout.serverPath(base: b.socketDir, local: local, remote: remote, port: port)
    do throws(VchanError) {
        guard local == ChannelLayout.adminDomain else {
            out.pointee = Handle.make(try SocketChannel.listen(path: path))
            return ODY_OK.rawValue
        }
        // The host's end in a domain's directory: only that domain's agent
        // gets in (AgentGate), and once it is known, only its uid can connect.
        let dir = ChannelLayout.directory(base: b.socketDir, local: local, remote: remote)
        let gate = b.gate
        let owner = gate.opening(dir)
        do throws(VchanError) {
            let ch = try SocketChannel.listen(path: path, mode: owner == nil ? 0o666 : 0o600, owner: owner,
                                              admit: { gate.admit($0, dir: dir, what: path) },
                                              onClose: { gate.closed(dir) })
            out.pointee = Handle.make(ch)
        } catch { gate.closed(dir); throw error }
        return ODY_OK.rawValue
    } catch { return map(error, err) }
}

func vsClientInit(_ backend: OpaquePointer?, _ ep: UnsafePointer<ody_vchan_endpoint>?, _ flags: UInt32,
                  _ out: UnsafeMutablePointer<OpaquePointer?>?, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "client_init", err) { return rc }
    guard let b = Handle.get(backend, as: SocketBackend.self), let out else { return fail(err, ODY_E_INVALID, "client_init: NULL argument") }
    let names = endpointNames(ep, "client_init", err)
    guard let v = names.value else { return names.rc }
    let (local, remote, port) = v
    guard local == ChannelLayout.adminDomain || remote == ChannelLayout.adminDomain else {
        return fail(err, ODY_E_UNSUPPORTED, "client_init: channels between two domains are made with fd passing, not by path")
    }
    let path = ChannelLayout.clientPath(base: b.socketDir, local: local, remote: remote, port: port)
    do {
        out.pointee = Handle.make(try SocketChannel.connect(path: path, timeoutNs: b.connectTimeoutNs))
        return ODY_OK.rawValue
    } catch { return map(error, err) }
}

@inline(__always)
func channel(_ ch: OpaquePointer?) -> SocketChannel? { Handle.get(ch, as: SocketChannel.self) }

func vsRead(_ ch: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ size: Int, _ done: UnsafeMutablePointer<Int>?,
            _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "read", err) { return rc }
    guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "read: NULL argument") }
    done.pointee = 0
    if size == 0 { return ODY_OK.rawValue }
    do { done.pointee = try c.read(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
}

func vsWrite(_ ch: OpaquePointer?, _ buf: UnsafeRawPointer?, _ size: Int, _ done: UnsafeMutablePointer<Int>?,
             _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "write", err) { return rc }
    guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "write: NULL argument") }
    done.pointee = 0
    if size == 0 { return ODY_OK.rawValue }
    do { done.pointee = try c.write(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
}

func vsRecv(_ ch: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ size: Int, _ flags: UInt32,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "recv", err) { return rc }
    guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "recv: NULL argument") }
    if size == 0 { return ODY_OK.rawValue }
    do { try c.recvAll(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
}

func vsSend(_ ch: OpaquePointer?, _ buf: UnsafeRawPointer?, _ size: Int, _ flags: UInt32,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "send", err) { return rc }
    guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "send: NULL argument") }
    if size == 0 { return ODY_OK.rawValue }
    do { try c.sendAll(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
}

func vsWait(_ ch: OpaquePointer?, _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "wait", err) { return rc }
    guard let c = channel(ch) else { return fail(err, ODY_E_INVALID, "wait: NULL channel") }
    do { try c.wait(); return ODY_OK.rawValue } catch { return map(error, err) }
}

func vsFdForPoll(_ ch: OpaquePointer?, _ fd: UnsafeMutablePointer<Int32>?, _ flags: UInt32,
                 _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "fd_for_poll", err) { return rc }
    guard let c = channel(ch), let fd else { return fail(err, ODY_E_INVALID, "fd_for_poll: NULL argument") }
    fd.pointee = c.fd
    return ODY_OK.rawValue
}

func vsIsOpen(_ ch: OpaquePointer?, _ state: UnsafeMutablePointer<UInt32>?, _ flags: UInt32,
              _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "is_open", err) { return rc }
    guard let c = channel(ch), let state else { return fail(err, ODY_E_INVALID, "is_open: NULL argument") }
    state.pointee = c.currentState().rawValue
    return ODY_OK.rawValue
}

func vsDataReady(_ ch: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?, _ flags: UInt32,
                 _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "data_ready", err) { return rc }
    guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "data_ready: NULL argument") }
    bytes.pointee = c.dataReady()
    return ODY_OK.rawValue
}

func vsBufferSpace(_ ch: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?, _ flags: UInt32,
                   _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "buffer_space", err) { return rc }
    guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "buffer_space: NULL argument") }
    bytes.pointee = c.bufferSpace()
    return ODY_OK.rawValue
}

func vsClose(_ ch: OpaquePointer?, _ flags: UInt32) {
    guard let c = channel(ch) else { return }
    c.close()
    Handle.release(ch, as: SocketChannel.self)
}

/// describe_domain (1.2): a domain's agent reaches this backend through its
/// own directory of sockets, <socket_dir>/<domain>, which its provider puts
/// at /run/odyssey/vchan inside the domain.
func vsDescribeDomain(_ backend: OpaquePointer?, _ domain: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<ody_channel_desc>?,
                      _ flags: UInt32, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if let rc = checkFlags(flags, known: 0, "describe_domain", err) { return rc }
    guard let b = Handle.get(backend, as: SocketBackend.self), let domain, let out else {
        return fail(err, ODY_E_INVALID, "describe_domain: NULL argument")
    }
    guard Int(out.pointee.struct_size) >= MemoryLayout<ody_channel_desc>.size else {
        return fail(err, ODY_E_ABI, "describe_domain: out struct_size \(out.pointee.struct_size) too small")
    }
    let name = String(cString: domain)
    guard ChannelLayout.isValidDomainName(name) else { return fail(err, ODY_E_INVALID, "describe_domain: invalid domain name \"\(name)\"") }
    let dir = ChannelLayout.directory(base: b.socketDir, local: ChannelLayout.adminDomain, remote: name)
    if let e = ensureDirectory(b.socketDir, mode: 0o700) { return map(e, err) }
    if let e = ensureDirectory(dir, mode: 0o755) { return map(e, err) }
    guard ChannelDescription(kind: .socketDir, path: dir).write(to: &out.pointee) else {
        return fail(err, ODY_E_INVALID, "describe_domain: socket directory path too long: \(dir)")
    }
    return ODY_OK.rawValue
}
