// odyssey-mux-vsock-check: the StreamMux conformance over real AF_VSOCK,
// run INSIDE a TCG guest with vsock_loopback (CID 1 = the guest itself).
// Never run it on a host: there AF_VSOCK would leave the machine
// (VchanMuxVsockGuestTests boots the guest and reads the verdict line).
//
// A host-role session takes the accepted vsock connection, a guest-role
// session dials it (VsockTransport, like the agent's vsock:CID:PORT); then:
// a stream both ways with half-close, a 2 MiB transfer compared byte for
// byte, and a descriptor passed with bytes. `--unix PATH` runs the same
// checks over a Unix socket (to debug this program on a host). Prints "MUX VSOCK OK" or
// "MUX VSOCK FAILED: why".
import Glibc
import StreamMux

func fail(_ why: String) -> Never { print("MUX VSOCK FAILED: \(why)"); exit(1) }

func writeAll(_ fd: Int32, _ b: [UInt8]) {
    var off = 0
    while off < b.count {
        let n = b.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { if errno == EINTR { continue }; fail("send: errno \(errno)") }
        off += n
    }
}

func readAll(_ fd: Int32, _ count: Int? = nil) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while count.map({ out.count < $0 }) ?? true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, min($0.count, (count ?? Int.max) - out.count)) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }


let port: UInt32 = 5512
let guest: MuxSession
let host: MuxSession
do {
    if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--unix" {
        // The same checks over a Unix socket (on a host, to debug this program).
        let path = CommandLine.arguments[2]
        let lfd = try AcceptingTransport.listen(path: path)
        guest = try MuxSession(role: .guest, transport: AcceptingTransport(listenFD: lfd, label: "unix")) { print("guest: \($0)") }
        host = try MuxSession(role: .host, transport: UnixSocketTransport(path: path)) { print("host: \($0)") }
    } else {
        guard case .success(let lfd) = Vsock.listen(port: port) else { fail("vsock listen (is vsock_loopback loaded?)") }
        guest = try MuxSession(role: .guest, transport: VsockTransport(cid: 1, port: port)) { print("guest: \($0)") }
        guard let (fd, cid) = Vsock.accept(lfd) else { fail("vsock accept: errno \(errno)") }
        print("host side accepted a vsock connection from CID \(cid)")
        host = try MuxSession(role: .host, transport: ConnectedTransport(fd: fd, label: "vsock CID \(cid)")) { print("host: \($0)") }
    }
} catch { fail("\(error)") }

do {
    // One stream, both ways, half-close.
    print("step: listen and dial")
    let l = try host.listen(port: 512)
    let g = try guest.dial(port: 512, timeoutNs: 30_000_000_000)
    print("step: connected")
    guard l.waitConnected(timeoutNs: 30_000_000_000) else { fail("listener not connected") }
    writeAll(g, Array("ping".utf8))
    guard readAll(l.fd, 4) == Array("ping".utf8) else { fail("ping") }
    shutdown(g, Int32(SHUT_WR))
    guard readAll(l.fd) == [] else { fail("EOF") }
    writeAll(l.fd, Array("pong".utf8)); shutdown(l.fd, Int32(SHUT_WR))
    guard readAll(g) == Array("pong".utf8) else { fail("pong after EOF") }
    close(g); close(l.fd)

    print("step: half-close done")
    // 2 MiB, compared byte for byte, with the time printed.
    let l2 = try host.listen(port: 513)
    let g2 = try guest.dial(port: 513, timeoutNs: 30_000_000_000)
    _ = l2.waitConnected(timeoutNs: 30_000_000_000)
    var x: UInt64 = 88172645463325252
    let data: [UInt8] = (0..<(2 << 20)).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    let writerFD = l2.fd
    let tid = spawn { writeAll(writerFD, data); shutdown(writerFD, Int32(SHUT_WR)) }
    let t0 = now()
    let got = readAll(g2)
    let secs = now() - t0
    pthread_join(tid, nil)
    guard got == data else { fail("2 MiB transfer: \(got.count) bytes, content differs") }
    print("mux over vsock loopback: 2 MiB in \(Int(secs * 1000)) ms (\(Int(2 / max(secs, 0.001))) MB/s, TCG, debug build)")

    // A descriptor passed with bytes arrives with them and works.
    let l3 = try host.listen(port: 514)
    let g3 = try guest.dial(port: 514, timeoutNs: 30_000_000_000)
    _ = l3.waitConnected(timeoutNs: 30_000_000_000)
    var sp: [Int32] = [-1, -1]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sp)
    let msg = Array("EXEC".utf8)
    guard msg.withUnsafeBytes({ LocalSocket.send(l3.fd, $0, fds: [sp[0]]) }) == 4 else { fail("sendmsg with a descriptor") }
    var fds: [Int32] = []
    var buf = [UInt8](repeating: 0, count: 4)
    var n = 0
    while n < 4 {
        var p = pollfd(fd: g3, events: Int16(POLLIN), revents: 0); _ = poll(&p, 1, 30_000)
        let r = buf.withUnsafeMutableBytes { LocalSocket.receive(g3, $0.baseAddress! + n, 4 - n, fds: &fds) }
        if r <= 0 { fail("recvmsg: \(r) errno \(errno)") }
        n += r
    }
    guard buf == msg, fds.count == 1 else { fail("descriptor passing: \(fds.count) descriptors") }
    writeAll(fds[0], Array("data".utf8))
    guard readAll(sp[1], 4) == Array("data".utf8) else { fail("passed stream") }
} catch { fail("\(error)") }
print("MUX VSOCK OK")
exit(0)

final class Box { let run: @Sendable () -> Void; init(_ r: @escaping @Sendable () -> Void) { run = r } }

/// A pthread running `body`. Not a closure of the top-level code: that would
/// be main-actor isolated, and the runtime traps when another thread runs it.
func spawn(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    var tid = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&tid, nil, { Unmanaged<Box>.fromOpaque($0!).takeRetainedValue().run(); return nil }, box)
    return tid
}
