// vchan-virtio-serial: the `vchan` factory "virtio-serial". A VM domain's
// agent talks to the host through ONE virtio-serial port; every qrexec
// channel (control, data, descriptors the host passes) is a stream of the
// StreamMux multiplexer over it.
//
// Design
// ------
// * describe_domain(D) -> VIRTIO_SERIAL, path <socket_dir>/<D>/vchan.sock,
//   name org.odyssey.vchan.0. The VM provider gives that to libvirt as
//   `<channel type='unix'><source mode='bind' path=.../><target
//   type='virtio' name='org.odyssey.vchan.0'/></channel>`: QEMU listens on
//   the socket, and the guest sees /dev/vportNpM. <socket_dir> is 0700 root,
//   <socket_dir>/<D> 0700: only the host (and QEMU, under libvirt's dynamic
//   ownership) reaches them.
// * server_init(dom0 -> D, port) registers a listener in D's mux session,
//   made on first use: it connects to QEMU's socket, retrying until it exists
//   (it appears when the VM starts) and reconnecting if QEMU drops it. The
//   channel's descriptor is the host's end of a socketpair from the start:
//   WAITING until the guest OPENs the port, then CONNECTED. The session is
//   stopped when D's last channel closes.
// * The peer's identity is the socket path (one per domain, chosen by the
//   host): never anything the guest says. Frames from the guest are
//   untrusted; a bad one closes D's session only (logged).
// * Capabilities: FD_PASSING (emulated by the mux: a descriptor sent with
//   bytes on a channel becomes a new stream, and the agent receives a
//   socketpair end with the same bytes) | CROSS_KERNEL.
// * client_init is NULL (unsupported): the host only serves; agents dial.
import Glibc
import MuxVchanCore
import PluginABI
import PluginKit
import StreamMux

nonisolated(unsafe) private let vchanOps = MuxVchanOps.table(open: vsOpen)

private let entry = PluginEntry(
    id: "vchan-virtio-serial", version: "0.1.0", license: "Apache-2.0",
    description: "vchan multiplexed over one virtio-serial port per VM domain (QEMU's chardev socket on the host)",
    factories: [Factory.describe(kind: ODY_KIND_VCHAN, name: "virtio-serial", capabilities: MuxVchanOps.capabilities,
                                 ops: UnsafeRawPointer(vchanOps))])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}

let defaultSocketDir = "/run/odyssey/vport"
let portName = "org.odyssey.vchan.0"

/// mkdir that accepts an existing directory (and sets the mode either way).
func ensureDirectory(_ path: String, mode: mode_t) -> MuxError? {
    if mkdir(path, mode) != 0 && errno != EEXIST { return .io("mkdir \(path)", errno: errno) }
    _ = chmod(path, mode)
    return nil
}

func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

func vsOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
            _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL argument") }
    let rc = ody_check_flags(args.pointee.flags, 0, err)
    if rc != ODY_OK.rawValue { return rc }
    let host = HostServices(args)
    let dir = host.config("socket_dir") ?? defaultSocketDir
    guard dir.hasPrefix("/") else { return fail(err, ODY_E_INVALID, "[vchan.virtio-serial] socket_dir must be an absolute path: \(dir)") }
    let sessions = MuxSessions(log: { host.log(ODY_LOG_WARNING, $0) }) { domain throws(MuxError) in
        UnixSocketTransport(path: join(join(dir, domain), "vchan.sock"))
    }
    // QEMU creates the socket itself: when libvirt runs it as a dedicated
    // user, that user must own the domain's directory (and traverse the base).
    var owner: (uid: uid_t, gid: gid_t)? = nil
    if let o = host.config("qemu_owner"), !o.isEmpty {
        let f = o.split(separator: ":")
        guard f.count == 2, let u = UInt32(f[0]), let g = UInt32(f[1]) else {
            return fail(err, ODY_E_INVALID, "[vchan.virtio-serial] qemu_owner must be UID:GID (numbers), got \"\(o)\"")
        }
        owner = (u, g)
    }
    let backend = MuxVchanBackend(host: host, factory: "virtio-serial", sessions: sessions) { [owner] domain in
        if let e = ensureDirectory(dir, mode: owner == nil ? 0o700 : 0o711) { return .failure(e) }
        let d = join(dir, domain)
        if let e = ensureDirectory(d, mode: 0o700) { return .failure(e) }
        if let owner, chown(d, owner.uid, owner.gid) != 0 { return .failure(.io("chown \(d)", errno: errno)) }
        let path = join(d, "vchan.sock")
        guard path.utf8.count < 108 else { return .failure(.invalid("describe_domain: socket path longer than 107 bytes: \(path)")) }
        return .success(ChannelDescription(kind: .virtioSerial, path: path, name: portName))
    }
    out.pointee = Handle.make(backend)
    return ODY_OK.rawValue
}
