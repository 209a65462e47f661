// vchan-xen: the `vchan` factory "xen", libvchan over Xen grant tables and
// event channels (libxenvchan), the channel qrexec uses on Qubes.
//
// Design
// ------
// * server_init(endpoint{local -> remote C, port P}) grants a ring to domain
//   C and publishes it at /local/domain/<own>/data/vchan/<C>/<P> (Qubes'
//   layout); client_init(endpoint{local -> server S, port P}) maps the ring
//   published at /local/domain/<S>/data/vchan/<own>/<P>, retrying until the
//   server has published it or connect_timeout_ms passed (Core/XenVchanEnds.swift).
// * Domain ids come from the endpoint (local_domid/remote_domid) when given,
//   else: the local end is this domain (xenstore "domid"), "dom0" is 0 and any
//   other name is looked up in xenstore's /local/domain/*/name.
// * Xen checks the peer: the grant, the event channel and the xenstore
//   entries are for domain C only. Once C is connected the entries are
//   removed (as Qubes' libvchan does), so nothing else can find the ring.
// * Semantics as libvchan and vchan-socket (Core/XenChannel.swift): read/write
//   partial (block for one byte), recv/send exact, wait, is_open WAITING/
//   CONNECTED/DISCONNECTED, data_ready, buffer_space; fd_for_poll is the
//   event channel's fd (readable when the peer signalled; wait() consumes it).
//   Reads after the peer closed drain what it sent, then read 0 (EOF).
// * No fd passing (the peer may be another kernel): CROSS_KERNEL only.
// * Where Xen is absent (no /dev/xen/evtchn, gntdev, gntalloc) open() is
//   refused as unsupported with what is missing, before libxenvchan is
//   loaded: the plugin always loads, the host keeps running.
//
// Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import PluginABI
import PluginKit

// PEER_MUST_EXIST: a ring is granted to a domain id, which exists only once
// libxl created the domain, so the host listens after the vmm's start.
let xenCapabilities: UInt64 = ODY_VCHAN_CAP_CROSS_KERNEL | ODY_VCHAN_CAP_PEER_MUST_EXIST

nonisolated(unsafe) private let vchanOps: UnsafeMutablePointer<ody_vchan_ops> = {
    let p = UnsafeMutablePointer<ody_vchan_ops>.allocate(capacity: 1)
    p.initialize(to: ody_vchan_ops(
        struct_size: UInt32(MemoryLayout<ody_vchan_ops>.size), version: ODY_ABI_MINOR,
        open: xvOpen, close_backend: xvCloseBackend, server_init: xvServerInit, client_init: xvClientInit,
        read: xvRead, write: xvWrite, recv: xvRecv, send: xvSend, wait: xvWait, fd_for_poll: xvFdForPoll,
        is_open: xvIsOpen, data_ready: xvDataReady, buffer_space: xvBufferSpace, close: xvClose,
        describe_domain: xvDescribeDomain))
    return p
}()

private let entry = PluginEntry(
    id: "vchan-xen", version: "0.1.0", license: "Apache-2.0",
    description: "vchan over Xen grant tables and event channels (libxenvchan), Qubes' xenstore layout",
    factories: [Factory.describe(kind: ODY_KIND_VCHAN, name: "xen", capabilities: xenCapabilities,
                                 ops: UnsafeRawPointer(vchanOps))])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}
