// A Swift view of one opened vchan instance (ody_vchan_ops) and its channels.
// Every call goes through BackendCall, so unsupported slots and errors read
// the same for every backend. A channel whose peer closed reads as 0 bytes
// (EOF) rather than an error.
import PluginABI

/// Who is at each end of a channel (ody_vchan_endpoint).
public struct VchanEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var local: String
    public var remote: String
    public var port: UInt32
    public var localDomid: Int32
    public var remoteDomid: Int32

    public init(local: String, remote: String, port: UInt32, localDomid: Int32 = -1, remoteDomid: Int32 = -1) {
        self.local = local; self.remote = remote; self.port = port
        self.localDomid = localDomid; self.remoteDomid = remoteDomid
    }

    public var description: String { "\(local)->\(remote):\(port)" }

    func abi() throws(OdysseyError) -> ody_vchan_endpoint {
        var ep = ody_vchan_endpoint()
        ep.struct_size = UInt32(MemoryLayout<ody_vchan_endpoint>.size)
        ep.port = port
        ep.local_domid = localDomid
        ep.remote_domid = remoteDomid
        guard ABIString.write(local, into: &ep.local_domain), ABIString.write(remote, into: &ep.remote_domain) else {
            throw OdysseyError(.invalid, "vchan endpoint name too long: \(self)")
        }
        return ep
    }
}

/// libvchan's is_open states.
public enum VchanState: UInt32, Sendable {
    case disconnected = 0, connected = 1, waiting = 2
}

public final class VchanBackend: @unchecked Sendable {
    public let factory: LoadedFactory
    let ops: UnsafePointer<ody_vchan_ops>
    private let handle: OpaquePointer
    public var label: String { "vchan backend '\(factory.name)'" }

    /// True when channel fds are Unix stream sockets that may be passed with SCM_RIGHTS.
    public var canPassFDs: Bool { factory.capabilities & ODY_VCHAN_CAP_FD_PASSING != 0 }

    /// True when a server end can only be made for a domain that exists
    /// (ODY_VCHAN_CAP_PEER_MUST_EXIST): the host listens after the vmm's start.
    public var peerMustExist: Bool { factory.capabilities & ODY_VCHAN_CAP_PEER_MUST_EXIST != 0 }

    /// Opens an instance of `factory` with its config section.
    init(factory: LoadedFactory, context: ServiceContext) throws(OdysseyError) {
        precondition(factory.kind == .vchan)
        self.factory = factory
        self.ops = factory.ops.assumingMemoryBound(to: ody_vchan_ops.self)
        let label = "vchan backend '\(factory.name)'"
        let open = try BackendCall.slot(ops, size: factory.opsSize, \.open, operation: "open", backend: label)
        self.handle = try BackendCall.open(open, factory: factory, context: context, label: label)
    }

    func slot<Fn>(_ p: KeyPath<ody_vchan_ops, Fn?>, _ op: String) throws(OdysseyError) -> Fn {
        try BackendCall.slot(ops, size: factory.opsSize, p, operation: op, backend: label)
    }

    /// How `domain`'s agent reaches this backend (describe_domain, 1.2): the
    /// domain's provider wires it. A 1.1 backend without the slot serves
    /// agents through a socket directory, as vchan-socket always did.
    public func describeDomain(_ domain: String) throws(OdysseyError) -> DomainDescriptionSpec.Channel {
        let fn = try slot(\.describe_domain, "describe_domain")
        var out = ody_channel_desc()
        out.struct_size = UInt32(MemoryLayout<ody_channel_desc>.size)
        try OdysseyError.rethrowing {
            try domain.withCString { n in _ = try BackendCall.run("\(label): describe_domain \(domain)") { fn(handle, n, &out, 0, $0) } }
        }
        guard let kind = DomainDescriptionSpec.Channel.Kind(rawValue: out.kind) else {
            throw OdysseyError(.plugin, "\(label): describe_domain \(domain) returned unknown channel kind \(out.kind)")
        }
        return .init(kind: kind, path: ABIString.read(out.path), name: ABIString.read(out.name), cid: out.cid)
    }

    /// Makes the server end of a channel; it is WAITING until the client connects.
    /// `asSocket`: the caller wants a Unix stream socket behind pollFD (to
    /// poll, read, or pass with SCM_RIGHTS) whatever the vchan; a channel of
    /// a vchan without fd passing is then bridged (VchanSocketBridge).
    public func serverInit(_ endpoint: VchanEndpoint, readMin: Int = 0, writeMin: Int = 0, flags: UInt32 = 0,
                           asSocket: Bool = false) throws(OdysseyError) -> VchanChannel {
        let fn = try slot(\.server_init, "server_init")
        var ep = try endpoint.abi()
        var out: OpaquePointer?
        try BackendCall.run("\(label): server_init \(endpoint)") { fn(handle, &ep, readMin, writeMin, flags, &out, $0) }
        guard let out else { throw OdysseyError(.plugin, "\(label): server_init returned no channel") }
        let channel = VchanChannel(backend: self, handle: out, endpoint: endpoint)
        guard asSocket && !canPassFDs else { return channel }
        return VchanChannel(bridging: try VchanSocketBridge(channel, label: "vchan bridge \(endpoint)"), of: channel)
    }

    /// A server end whose bytes a pump moves to and from a copy of `socket`
    /// (a stream socket whose peer someone else holds): how a host without
    /// fd passing hands a call's end to an agent, which dials the port
    /// instead of receiving a descriptor. `onEnd` runs once the pump ended.
    public func serverInit(_ endpoint: VchanEndpoint, pumpingInto socket: Int32,
                           onEnd: @escaping @Sendable () -> Void) throws(OdysseyError) -> VchanChannel {
        let fn = try slot(\.server_init, "server_init")
        var ep = try endpoint.abi()
        var out: OpaquePointer?
        try BackendCall.run("\(label): server_init \(endpoint)") { fn(handle, &ep, 0, 0, 0, &out, $0) }
        guard let out else { throw OdysseyError(.plugin, "\(label): server_init returned no channel") }
        let channel = VchanChannel(backend: self, handle: out, endpoint: endpoint)
        let bridge = try VchanSocketBridge(channel, label: "vchan relay \(endpoint)", into: socket, onEnd: onEnd)
        return VchanChannel(bridging: bridge, of: channel)
    }

    /// Connects the client end of a channel the peer serves.
    public func clientInit(_ endpoint: VchanEndpoint, flags: UInt32 = 0) throws(OdysseyError) -> VchanChannel {
        let fn = try slot(\.client_init, "client_init")
        var ep = try endpoint.abi()
        var out: OpaquePointer?
        try BackendCall.run("\(label): client_init \(endpoint)") { fn(handle, &ep, flags, &out, $0) }
        guard let out else { throw OdysseyError(.plugin, "\(label): client_init returned no channel") }
        return VchanChannel(backend: self, handle: out, endpoint: endpoint)
    }

    public func close() {
        if let fn = try? slot(\.close_backend, "close_backend") { fn(handle, 0) }
    }
}

/// One channel. Not thread-safe for `close`: no other thread may be inside a
/// call on the channel when it is closed (reads and writes may overlap).
public final class VchanChannel: @unchecked Sendable {
    public let backend: VchanBackend
    public let endpoint: VchanEndpoint
    private let handle: OpaquePointer
    private var closed = false
    private var label: String { "\(backend.label) channel \(endpoint)" }
    /// Set for a channel seen as a socket (serverInit asSocket): every
    /// operation goes to the bridge, whose pump owns the plugin's channel.
    private let bridge: VchanSocketBridge?

    init(backend: VchanBackend, handle: OpaquePointer, endpoint: VchanEndpoint) {
        self.backend = backend
        self.handle = handle
        self.endpoint = endpoint
        bridge = nil
    }

    init(bridging bridge: VchanSocketBridge, of raw: VchanChannel) {
        backend = raw.backend; handle = raw.handle; endpoint = raw.endpoint
        self.bridge = bridge
    }

    /// Its pollFD is a Unix stream socket once connected (fd passing, or bridged).
    public var isSocket: Bool { bridge != nil || backend.canPassFDs }

    deinit { close() }

    private func slot<Fn>(_ p: KeyPath<ody_vchan_ops, Fn?>, _ op: String) throws(OdysseyError) -> Fn {
        guard !closed else { throw OdysseyError(.state, "\(label): \(op) on a closed channel") }
        return try backend.slot(p, op)
    }

    /// Partial read; blocks until at least one byte. 0 means the peer closed.
    public func read(_ buf: UnsafeMutableRawBufferPointer) throws(OdysseyError) -> Int {
        if let bridge { return try bridge.read(buf, label: label) }
        let fn = try slot(\.read, "read")
        var done = 0
        var err = makeErr()
        let rc = fn(handle, buf.baseAddress, buf.count, &done, 0, &err)
        if rc == ODY_E_CLOSED.rawValue { return 0 }
        try BackendCall.run("\(label): read") { e in e.pointee = err; return rc }
        return done
    }

    /// Partial write; blocks until at least one byte is taken.
    public func write(_ buf: UnsafeRawBufferPointer) throws(OdysseyError) -> Int {
        if let bridge { return try bridge.write(buf, label: label) }
        let fn = try slot(\.write, "write")
        var done = 0
        try BackendCall.run("\(label): write") { fn(handle, buf.baseAddress, buf.count, &done, 0, $0) }
        return done
    }

    /// Exactly `buf.count` bytes; throws (code .io) if the peer closed first.
    public func recv(_ buf: UnsafeMutableRawBufferPointer) throws(OdysseyError) {
        if let bridge { return try bridge.recv(buf, label: label) }
        let fn = try slot(\.recv, "recv")
        try BackendCall.run("\(label): recv") { fn(handle, buf.baseAddress, buf.count, 0, $0) }
    }

    /// All of `buf`, blocking.
    public func send(_ buf: UnsafeRawBufferPointer) throws(OdysseyError) {
        if let bridge { return try bridge.send(buf, label: label) }
        let fn = try slot(\.send, "send")
        try BackendCall.run("\(label): send") { fn(handle, buf.baseAddress, buf.count, 0, $0) }
    }

    public func send(_ bytes: [UInt8]) throws(OdysseyError) {
        try OdysseyError.rethrowing { try bytes.withUnsafeBytes { raw in try send(raw) } }
    }

    /// Blocks until the peer connects, data arrives, or the peer closes.
    public func wait() throws(OdysseyError) {
        if let bridge { return bridge.wait() }
        let fn = try slot(\.wait, "wait")
        try BackendCall.run("\(label): wait") { fn(handle, 0, $0) }
    }

    /// A descriptor that polls readable when wait() would return. With
    /// ODY_VCHAN_CAP_FD_PASSING it is a Unix stream socket (the connection
    /// itself once the peer connected) that may be passed with SCM_RIGHTS.
    public func pollFD() throws(OdysseyError) -> Int32 {
        if let bridge { return bridge.pollFD }
        let fn = try slot(\.fd_for_poll, "fd_for_poll")
        var fd: Int32 = -1
        try BackendCall.run("\(label): fd_for_poll") { fn(handle, &fd, 0, $0) }
        return fd
    }

    public func state() throws(OdysseyError) -> VchanState {
        if let bridge { return bridge.state }
        let fn = try slot(\.is_open, "is_open")
        var s: UInt32 = 0
        try BackendCall.run("\(label): is_open") { fn(handle, &s, 0, $0) }
        return VchanState(rawValue: s) ?? .disconnected
    }

    public func dataReady() throws(OdysseyError) -> Int {
        if let bridge { return bridge.dataReady }
        let fn = try slot(\.data_ready, "data_ready")
        var n = 0
        try BackendCall.run("\(label): data_ready") { fn(handle, &n, 0, $0) }
        return n
    }

    public func bufferSpace() throws(OdysseyError) -> Int {
        if let bridge { return bridge.bufferSpace }
        let fn = try slot(\.buffer_space, "buffer_space")
        var n = 0
        try BackendCall.run("\(label): buffer_space") { fn(handle, &n, 0, $0) }
        return n
    }

    /// Closes the channel (idempotent).
    public func close() {
        guard !closed else { return }
        closed = true
        if let bridge { bridge.close(); return }   // its pump closes the plugin's channel
        if let fn = try? backend.slot(\.close, "close") { fn(handle, 0) }
    }

    private func makeErr() -> ody_error {
        var e = ody_error()
        e.struct_size = UInt32(MemoryLayout<ody_error>.size)
        return e
    }
}
