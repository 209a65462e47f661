// vchan-vsock: the `vchan` factory "vsock". Like virtio-serial, every qrexec
// channel of a VM domain is a StreamMux stream, here over ONE AF_VSOCK
// connection per domain (vhost-vsock: faster than a virtio-serial port).
//
// Design
// ------
// * Each domain gets a stable guest CID: `cid_base` + an index recorded in
//   <state_dir>/cids ("NAME CID" lines), >= 3. describe_domain(D) -> VSOCK
//   with that cid, and `name` = the host's vsock port (decimal) so the
//   provider can put `odyssey.vchan=vsock:PORT` on the kernel command line;
//   libvirt: `<vsock model='virtio'><cid auto='no' address='CID'/></vsock>`.
// * The host listens on `port` (default 2512) for every domain; the agent
//   dials CID 2 (the host). A connection is admitted only if its peer CID
//   (the kernel's word, from accept) is a known domain's CID: that is the
//   identity; anything else is closed and logged. The connection becomes
//   that domain's mux transport (a newer one replaces the old: the guest
//   reconnected).
// * `open` fails with a message when /dev/vhost-vsock is absent (no vsock to
//   guests here; the host uses virtio-serial instead). NEVER opened on a host
//   without it: with no loopback transport a vsock connection would leave
//   the machine.
import Glibc
import MuxVchanCore
import PluginABI
import PluginKit
import StreamMux

nonisolated(unsafe) private let vchanOps = MuxVchanOps.table(open: vsockOpen)

private let entry = PluginEntry(
    id: "vchan-vsock", version: "0.1.0", license: "Apache-2.0",
    description: "vchan multiplexed over one AF_VSOCK connection per VM domain (vhost-vsock); identity = the peer CID",
    factories: [Factory.describe(kind: ODY_KIND_VCHAN, name: "vsock", capabilities: MuxVchanOps.capabilities,
                                 ops: UnsafeRawPointer(vchanOps))])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}

func vsockOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL argument") }
    let rc = ody_check_flags(args.pointee.flags, 0, err)
    if rc != ODY_OK.rawValue { return rc }
    let host = HostServices(args)
    // Checked before any socket exists: without vhost-vsock there is no vsock
    // to guests, and AF_VSOCK would reach other machines instead.
    guard access("/dev/vhost-vsock", F_OK) == 0 else {
        return fail(err, ODY_E_UNSUPPORTED, "vsock: /dev/vhost-vsock is absent on this host, so VMs cannot have vsock; use the virtio-serial vchan ([vchan] default = \"virtio-serial\")")
    }
    let port = host.config("port").flatMap { UInt32($0) } ?? 2512
    let cidBase = host.config("cid_base").flatMap { UInt32($0) } ?? 100
    let stateDir = host.config("state_dir") ?? "/var/lib/odyssey/vsock"
    guard cidBase >= 3, port >= 1, stateDir.hasPrefix("/") else {
        return fail(err, ODY_E_INVALID, "[vchan.vsock] needs cid_base >= 3, a port and an absolute state_dir (cid_base \(cidBase), port \(port), state_dir \(stateDir))")
    }
    let cids = CIDTable(path: stateDir + "/cids", base: cidBase)
    if let e = cids.load() { return MuxVchanOps.map(e, err) }
    let acceptor = VsockAcceptor(port: port, cids: cids) { host.log(ODY_LOG_WARNING, $0) }
    let sessions = MuxSessions(log: { host.log(ODY_LOG_WARNING, $0) }) { domain throws(MuxError) in
        try acceptor.transport(for: domain)
    }
    acceptor.sessions = sessions
    if let e = acceptor.start() { return MuxVchanOps.map(e, err) }
    let backend = MuxVchanBackend(host: host, factory: "vsock", sessions: sessions) { domain in
        switch cids.cid(for: domain) {
        case .failure(let e): return .failure(e)
        case .success(let cid): return .success(ChannelDescription(kind: .vsock, name: String(port), cid: cid))
        }
    }
    out.pointee = Handle.make(backend)
    return ODY_OK.rawValue
}
