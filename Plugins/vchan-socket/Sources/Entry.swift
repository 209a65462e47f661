// vchan-socket: the `vchan` factory "socket". Channels are Unix stream
// sockets, laid out so that a domain reaches only the channels the host made
// for it and the host knows which domain a channel belongs to without asking
// the domain.
//
// Design
// ------
// * The host (local end "dom0") calls server_init(endpoint{dom0 -> X, port})
//   and listens on  <socket_dir>/<X>/vchan.dom0.X.<port>.sock.
//   <socket_dir> is created 0700 (only the host traverses it); <socket_dir>/<X>
//   0755 root-owned (a domain cannot create files in it); socket files 0666.
// * vmm-native bind-mounts <socket_dir>/<X> (and nothing else of <socket_dir>)
//   into domain X at /run/odyssey/vchan. X therefore sees its own channels
//   only; another domain's directory does not exist in X's mount namespace.
// * The agent in X calls client_init(endpoint{X -> dom0, port}), which
//   connects to $VCHAN_SOCKET_DIR (default /run/odyssey/vchan)
//   /vchan.dom0.X.<port>.sock, retrying with an exponential backoff from
//   50 µs capped at 10 ms (not Qubes' fixed 100 ms: start latency matters).
// * The server accepts ONE connection, moves it onto the listening socket's
//   fd number (so fd_for_poll never changes) and unlinks the file: nobody
//   else can connect afterwards. Since the file only ever existed in X's
//   directory, the peer is X: the host learns the peer from the path it
//   chose, never from anything the domain says. (SO_PEERCRED is available
//   for a second opinion; the uid ranges of vmm-native make it meaningful.)
// * Domain names are checked as Qubes names ([A-Za-z][A-Za-z0-9_.-]{0,30})
//   before they become path components; ports must be 1..65535.
// * Channels between two domains (issue 5) are not made by path: the host
//   creates a socketpair and passes one end to each agent with SCM_RIGHTS
//   over their control channels (ODY_VCHAN_CAP_FD_PASSING; fd_for_poll is a
//   Unix stream socket, see Core/FDPassing.swift). server_init/client_init
//   with neither end dom0 is therefore ODY_E_UNSUPPORTED here.
// * read_min/write_min are accepted and ignored: socket buffers are the
//   kernel's (about 200 KiB each way).
//
// libvchan semantics: read/write partial (block until at least one byte),
// recv/send all-or-nothing, wait blocks until the client connects, data
// arrives or the peer closes, is_open WAITING/CONNECTED/DISCONNECTED,
// data_ready = FIONREAD, buffer_space = SO_SNDBUF - SIOCOUTQ when writable.
//
// Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit
import VchanSocketCore

let socketCapabilities: UInt64 = ODY_VCHAN_CAP_FD_PASSING

nonisolated(unsafe) private let vchanOps: UnsafeMutablePointer<ody_vchan_ops> = {
    let p = UnsafeMutablePointer<ody_vchan_ops>.allocate(capacity: 1)
    p.initialize(to: ody_vchan_ops(
        struct_size: UInt32(MemoryLayout<ody_vchan_ops>.size), version: ODY_ABI_MINOR,
        open: vsOpen, close_backend: vsCloseBackend, server_init: vsServerInit, client_init: vsClientInit,
        read: vsRead, write: vsWrite, recv: vsRecv, send: vsSend, wait: vsWait, fd_for_poll: vsFdForPoll,
        is_open: vsIsOpen, data_ready: vsDataReady, buffer_space: vsBufferSpace, close: vsClose,
        describe_domain: vsDescribeDomain))
    return p
}()

private let entry = PluginEntry(
    id: "vchan-socket", version: "0.1.0", license: "Apache-2.0",
    description: "vchan over Unix stream sockets, one directory per domain; fd passing",
    factories: [Factory.describe(kind: ODY_KIND_VCHAN, name: "socket", capabilities: socketCapabilities,
                                 ops: UnsafeRawPointer(vchanOps))])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}

/// ody_check_flags as an early return (nil when every bit is known).
func checkFlags(_ flags: UInt32, known: UInt32, _ op: String, _ err: UnsafeMutablePointer<ody_error>?) -> Int32? {
    let rc = ody_check_flags(flags, known, err)
    if rc == ODY_OK.rawValue { return nil }
    return fail(err, rc, "\(op): unknown flag bits 0x\(String(flags & ~known, radix: 16))")
}
