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
//   odyssey-xen-vchan-check hostile SERVER_DOMID PORT
//     a peer that lies in the shared page, with libxenvchan's raw calls:
//     sends "good", waits for "g"; moves its producer index 2^30 ahead and
//     signals, waits for "2"; writes 7 into its live flag and signals; then
//     waits for the server to close. Prints "XEN VCHAN HOSTILE DONE".
import CXenvchan
import Glibc
import PluginABI
import XenVchanCore
import XenVchanLinked

func fail(_ why: String) -> Never { print("XEN VCHAN CHECK FAILED: \(why)"); exit(1) }

let args = CommandLine.arguments
if args.count == 4 && args[1] == "hostile" { hostile(args) }
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

/// The lying peer (see the header): the server must bound what it believes.
func hostile(_ args: [String]) -> Never {
    guard let server = XenStore.parseDomid(args[2]), let port = UInt32(args[3]) else { fail("usage: hostile SERVER_DOMID PORT") }
    let own: Int32
    do throws(XenVchanError) { own = try XenStore(api: .linked).ownDomid() } catch { fail(error.message) }
    let path = XenVchanEnds.clientPath(server: server, client: own, port: port)
    var ctrl: UnsafeMutablePointer<libxenvchan>?
    for _ in 0..<3000 where ctrl == nil {
        ctrl = libxenvchan_client_init(nil, Int32(server), path)
        if ctrl == nil { usleep(10_000) }
    }
    guard let c = ctrl, let ring = c.pointee.ring else { fail("client_init \(path): errno \(errno)") }
    ody_xenvchan_set_nonblocking(c)
    func expect(_ byte: UInt8) {
        var b: UInt8 = 0
        while true {
            let n = libxenvchan_read(c, &b, 1)
            if n == 1 { if b == byte { return }; fail("expected \(byte), got \(b)") }
            if n < 0 { fail("read: the server went away early") }
            _ = libxenvchan_wait(c)
        }
    }
    let good: [UInt8] = Array("good".utf8)
    guard good.withUnsafeBytes({ libxenvchan_write(c, $0.baseAddress, 4) }) == 4 else { fail("write good") }
    expect(UInt8(ascii: "g"))
    // left is the client's write ring (the server's read ring): claim 2^30 bytes are there.
    ring.pointee.left.prod &+= 1 << 30
    _ = xenevtchn_notify(c.pointee.event, c.pointee.event_port)
    expect(UInt8(ascii: "2"))
    ring.pointee.cli_live = 7
    _ = xenevtchn_notify(c.pointee.event, c.pointee.event_port)
    for _ in 0..<3000 where ring.pointee.srv_live != 0 { usleep(10_000) }
    print("XEN VCHAN HOSTILE DONE srv_live=\(ring.pointee.srv_live)")
    exit(0)
}
