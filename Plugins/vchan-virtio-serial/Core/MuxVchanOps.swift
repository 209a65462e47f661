// The ody_vchan_ops slots shared by the multiplexed vchans (virtio-serial,
// vsock): argument checks, then MuxSessions/MuxChannel. Each plugin has its
// own `open` (what its backend connects to) and describe_domain.
#if canImport(Glibc)
import Glibc
#endif
import PluginABI
import PluginKit
import StreamMux
import VchanSocketCore

/// One opened instance of a multiplexed vchan factory.
public final class MuxVchanBackend: @unchecked Sendable {
    public let host: HostServices
    public let sessions: MuxSessions
    public let factory: String
    /// describe_domain: how the domain's agent reaches this backend.
    public let describe: (String) -> Result<ChannelDescription, MuxError>

    public init(host: HostServices, factory: String, sessions: MuxSessions,
                describe: @escaping (String) -> Result<ChannelDescription, MuxError>) {
        self.host = host; self.factory = factory; self.sessions = sessions; self.describe = describe
    }
}

public enum MuxVchanOps {
    public static let capabilities: UInt64 = ODY_VCHAN_CAP_FD_PASSING | ODY_VCHAN_CAP_CROSS_KERNEL

    /// The table with this plugin's `open`.
    public static func table(open: @escaping @convention(c) (UnsafePointer<ody_instance_args>?, UnsafeMutablePointer<OpaquePointer?>?,
                                                             UnsafeMutablePointer<ody_error>?) -> Int32) -> UnsafeMutablePointer<ody_vchan_ops> {
        let p = UnsafeMutablePointer<ody_vchan_ops>.allocate(capacity: 1)
        p.initialize(to: ody_vchan_ops(
            struct_size: UInt32(MemoryLayout<ody_vchan_ops>.size), version: ODY_ABI_MINOR,
            open: open, close_backend: closeBackend, server_init: serverInit,
            client_init: nil,   // the host never dials into a domain: agents dial, the host serves
            read: read, write: write, recv: recv, send: send, wait: wait, fd_for_poll: fdForPoll,
            is_open: isOpen, data_ready: dataReady, buffer_space: bufferSpace, close: close,
            describe_domain: describeDomain))
        return p
    }

    public static func map(_ e: MuxError, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        switch e {
        case .invalid(let m): fail(err, ODY_E_INVALID, m)
        case .refused, .reset: fail(err, ODY_E_CLOSED, e.description)
        case .timeout(let m): fail(err, ODY_E_TIMEOUT, m)
        case .violation: fail(err, ODY_E_BACKEND, e.description)
        case .io(_, let code):
            code == ENOENT ? fail(err, ODY_E_NOT_FOUND, backend: code, e.description)
                : code == EACCES || code == EPERM ? fail(err, ODY_E_PERMISSION, backend: code, e.description)
                : fail(err, ODY_E_IO, backend: code, e.description)
        }
    }

    static func map(_ e: MuxChannel.Failure, _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        switch e {
        case .closed: fail(err, ODY_E_CLOSED, "channel closed by the peer")
        case .io(let w, let code): fail(err, ODY_E_IO, backend: code, "\(w): \(String(cString: strerror(code)))")
        }
    }

    static func flagsOK(_ flags: UInt32, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
        let rc = ody_check_flags(flags, 0, err)
        if rc == ODY_OK.rawValue { return nil }
        return fail(err, rc, "\(op): unknown flag bits 0x\(String(flags, radix: 16))")
    }

    /// Qubes domain names: they become path components (one rule, vchan-socket's).
    public static func isValidDomainName(_ name: String) -> Bool { ChannelLayout.isValidDomainName(name) }

    static let closeBackend: @convention(c) (OpaquePointer?, UInt32) -> Void = { backend, _ in
        Handle.get(backend, as: MuxVchanBackend.self)?.sessions.stopAll()
        Handle.release(backend, as: MuxVchanBackend.self)
    }

    static let serverInit: @convention(c) (OpaquePointer?, UnsafePointer<ody_vchan_endpoint>?, Int, Int, UInt32,
                                           UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        backend, ep, _, _, flags, out, err in
        if let rc = flagsOK(flags, "server_init", err) { return rc }
        guard let b = Handle.get(backend, as: MuxVchanBackend.self), let ep, let out else { return fail(err, ODY_E_INVALID, "server_init: NULL argument") }
        let need = MemoryLayout<ody_vchan_endpoint>.offset(of: \ody_vchan_endpoint.remote_domain)! + Int(ODY_NAME_MAX)
        guard Int(ep.pointee.struct_size) >= need else { return fail(err, ODY_E_ABI, "server_init: endpoint struct_size \(ep.pointee.struct_size) too small") }
        let local = FixedCString.read(ep.pointee.local_domain)
        let remote = FixedCString.read(ep.pointee.remote_domain)
        let port = ep.pointee.port
        guard local == "dom0" else {
            return fail(err, ODY_E_UNSUPPORTED, "server_init: the \(b.factory) vchan serves from the admin domain (dom0) only; channels between domains are passed descriptors")
        }
        guard isValidDomainName(remote), remote != local else { return fail(err, ODY_E_INVALID, "server_init: invalid domain name \"\(remote)\"") }
        guard port >= 1 && port <= 65535 else { return fail(err, ODY_E_INVALID, "server_init: invalid port \(port)") }
        do throws(MuxError) {
            out.pointee = Handle.make(try b.sessions.serve(domain: remote, port: port))
            return ODY_OK.rawValue
        } catch { return map(error, err) }
    }

    @inline(__always)
    static func channel(_ ch: OpaquePointer?) -> MuxChannel? { Handle.get(ch, as: MuxChannel.self) }

    static let read: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int, UnsafeMutablePointer<Int>?, UInt32,
                                     UnsafeMutablePointer<ody_error>?) -> Int32 = { ch, buf, size, done, flags, err in
        if let rc = flagsOK(flags, "read", err) { return rc }
        guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "read: NULL argument") }
        done.pointee = 0
        if size == 0 { return ODY_OK.rawValue }
        do throws(MuxChannel.Failure) { done.pointee = try c.read(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
    }

    static let write: @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int, UnsafeMutablePointer<Int>?, UInt32,
                                      UnsafeMutablePointer<ody_error>?) -> Int32 = { ch, buf, size, done, flags, err in
        if let rc = flagsOK(flags, "write", err) { return rc }
        guard let c = channel(ch), let done, buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "write: NULL argument") }
        done.pointee = 0
        if size == 0 { return ODY_OK.rawValue }
        do throws(MuxChannel.Failure) { done.pointee = try c.write(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
    }

    static let recv: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, buf, size, flags, err in
        if let rc = flagsOK(flags, "recv", err) { return rc }
        guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "recv: NULL argument") }
        if size == 0 { return ODY_OK.rawValue }
        do throws(MuxChannel.Failure) { try c.recvAll(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
    }

    static let send: @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, buf, size, flags, err in
        if let rc = flagsOK(flags, "send", err) { return rc }
        guard let c = channel(ch), buf != nil || size == 0 else { return fail(err, ODY_E_INVALID, "send: NULL argument") }
        if size == 0 { return ODY_OK.rawValue }
        do throws(MuxChannel.Failure) { try c.sendAll(buf!, size); return ODY_OK.rawValue } catch { return map(error, err) }
    }

    static let wait: @convention(c) (OpaquePointer?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = { ch, flags, err in
        if let rc = flagsOK(flags, "wait", err) { return rc }
        guard let c = channel(ch) else { return fail(err, ODY_E_INVALID, "wait: NULL channel") }
        do throws(MuxChannel.Failure) { try c.wait(); return ODY_OK.rawValue } catch { return map(error, err) }
    }

    static let fdForPoll: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, fd, flags, err in
        if let rc = flagsOK(flags, "fd_for_poll", err) { return rc }
        guard let c = channel(ch), let fd else { return fail(err, ODY_E_INVALID, "fd_for_poll: NULL argument") }
        fd.pointee = c.fd
        return ODY_OK.rawValue
    }

    static let isOpen: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt32>?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, state, flags, err in
        if let rc = flagsOK(flags, "is_open", err) { return rc }
        guard let c = channel(ch), let state else { return fail(err, ODY_E_INVALID, "is_open: NULL argument") }
        state.pointee = c.currentState().rawValue
        return ODY_OK.rawValue
    }

    static let dataReady: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, bytes, flags, err in
        if let rc = flagsOK(flags, "data_ready", err) { return rc }
        guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "data_ready: NULL argument") }
        bytes.pointee = c.dataReady()
        return ODY_OK.rawValue
    }

    static let bufferSpace: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?, UInt32, UnsafeMutablePointer<ody_error>?) -> Int32 = {
        ch, bytes, flags, err in
        if let rc = flagsOK(flags, "buffer_space", err) { return rc }
        guard let c = channel(ch), let bytes else { return fail(err, ODY_E_INVALID, "buffer_space: NULL argument") }
        bytes.pointee = c.bufferSpace()
        return ODY_OK.rawValue
    }

    static let close: @convention(c) (OpaquePointer?, UInt32) -> Void = { ch, _ in
        guard let c = channel(ch) else { return }
        c.close()
        Handle.release(ch, as: MuxChannel.self)
    }

    static let describeDomain: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<ody_channel_desc>?, UInt32,
                                               UnsafeMutablePointer<ody_error>?) -> Int32 = { backend, domain, out, flags, err in
        if let rc = flagsOK(flags, "describe_domain", err) { return rc }
        guard let b = Handle.get(backend, as: MuxVchanBackend.self), let domain, let out else { return fail(err, ODY_E_INVALID, "describe_domain: NULL argument") }
        guard Int(out.pointee.struct_size) >= MemoryLayout<ody_channel_desc>.size else {
            return fail(err, ODY_E_ABI, "describe_domain: out struct_size \(out.pointee.struct_size) too small")
        }
        let name = String(cString: domain)
        guard isValidDomainName(name) else { return fail(err, ODY_E_INVALID, "describe_domain: invalid domain name \"\(name)\"") }
        switch b.describe(name) {
        case .failure(let e): return map(e, err)
        case .success(let d):
            guard d.write(to: &out.pointee) else { return fail(err, ODY_E_INVALID, "describe_domain: channel path too long: \(d.path)") }
            return ODY_OK.rawValue
        }
    }
}
