// odyssey-xen-vchan-check: a static vchan-xen client built the way the
// agent is (-static-executable, libxenvchan and its closure linked from
// libxen-dev's .a files through XenVchanLinked), so the Xen tier proves the
// static path works, not only that it links. A peer for a server in another
// process: in dom0 (XenVchanConformanceTests serves through the plugin and
// runs this), or in a domU's busybox initrd (nothing else needed).
//
//   odyssey-xen-vchan-check SERVER_DOMID PORT
//     connects to /local/domain/SERVER_DOMID/data/vchan/<own domid>/PORT,
//     echoes every byte back until the server closes, then prints
//     "XEN VCHAN CHECK OK <bytes>" (or "XEN VCHAN CHECK FAILED: why", exit 1).
import Glibc
import PluginABI
import XenVchanCore
import XenVchanLinked

func fail(_ why: String) -> Never { print("XEN VCHAN CHECK FAILED: \(why)"); exit(1) }

let args = CommandLine.arguments
guard args.count == 3, let server = XenStore.parseDomid(args[1]), let port = UInt32(args[2]), port > 0, port <= 65535 else {
    print("usage: odyssey-xen-vchan-check SERVER_DOMID PORT")
    exit(2)
}
do throws(XenVchanError) {
    let api = XenVchanAPI.linked
    let ends = try XenVchanEnds(api: api, store: try XenStore(api: api), connectTimeoutNs: 30_000_000_000)
    let ch = try ends.connect(server: server, port: port, label: "check -> domid \(server):\(port)")
    let buf = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
    var echoed = 0
    while true {
        let n = try ch.read(buf, 65536)
        if n == 0 { break }
        try ch.sendAll(buf, n)
        echoed += n
    }
    ch.close()
    print("XEN VCHAN CHECK OK \(echoed)")
} catch {
    fail(error.message)
}
