// StreamMux end to end: host and guest sessions over a real Unix socket
// (QEMU's chardev socket's stand-in), every stream a real socketpair.
import CVchanSocket
import Foundation
import StreamMux
import XCTest

final class VchanMuxEngineTests: XCTestCase {
    func testOneStreamBothWaysAndHalfClose() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 512)
        defer { close(h); close(g) }
        try IO.writeAll(g, Array("hello host".utf8))
        XCTAssertEqual(IO.readExactly(h, 10), Array("hello host".utf8))
        // The guest is done writing; the host still answers after the EOF.
        shutdown(g, Int32(SHUT_WR))
        XCTAssertEqual(IO.readAll(h), [], "EOF reaches the host")
        try IO.writeAll(h, Array("after your EOF".utf8))
        shutdown(h, Int32(SHUT_WR))
        XCTAssertEqual(String(decoding: IO.readAll(g), as: UTF8.self), "after your EOF")
        XCTAssertTrue(m.host.isSynced && m.guest.isSynced)
    }

    func testRefusedPortAndListenerTakesOneClient() throws {
        let m = try MuxPair()
        XCTAssertThrowsError(try m.guest.dial(port: 700, timeoutNs: 30_000_000_000)) { e in
            XCTAssertEqual(e as? MuxError, .refused(port: 700))
        }
        let (h, g) = try m.connect(port: 700)
        defer { close(h); close(g) }
        XCTAssertThrowsError(try m.guest.dial(port: 700, timeoutNs: 30_000_000_000), "a listener takes one client") { e in
            XCTAssertEqual(e as? MuxError, .refused(port: 700))
        }
    }

    func testManyParallelStreamsChecksummed() throws {
        let m = try MuxPair()
        let count = 24, size = 384 * 1024
        var pairs: [(Int32, Int32)] = []
        for i in 0..<count { pairs.append(try m.connect(port: UInt32(1000 + i))) }
        let results = LockedArray<Bool>()
        let group = DispatchGroup()
        for (i, (h, g)) in pairs.enumerated() {
            let data = IO.pattern(size, seed: UInt64(i + 1))
            // Host side: echo until EOF.
            group.enter()
            Thread.detachNewThread { let b = IO.readAll(h); try? IO.writeAll(h, b); shutdown(h, Int32(SHUT_WR)); group.leave() }
            // Guest side: send, then read the echo back.
            group.enter()
            Thread.detachNewThread {
                let w = DispatchGroup(); w.enter()
                Thread.detachNewThread { try? IO.writeAll(g, data); shutdown(g, Int32(SHUT_WR)); w.leave() }
                let back = IO.readAll(g)
                w.wait()
                results.append(IO.checksum(back) == IO.checksum(data) && back.count == size)
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 300), .success)
        XCTAssertEqual(results.all.filter { $0 }.count, count, "every stream echoed its bytes intact")
        for (h, g) in pairs { close(h); close(g) }
    }

    func testBigTransferAndThroughputAgainstASocketpair() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 600)
        defer { close(h); close(g) }
        let size = 16 << 20
        let data = IO.pattern(size, seed: 42)
        let muxSeconds = try transfer(data, from: h, to: g)
        var sp: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sp), 0)
        defer { close(sp[0]); close(sp[1]) }
        let rawSeconds = try transfer(data, from: sp[0], to: sp[1])
        let mb = Double(size) / 1_048_576
        print("mux throughput: \(Int(mb / muxSeconds)) MB/s through the mux vs \(Int(mb / rawSeconds)) MB/s through a raw socketpair (16 MiB, host -> guest, debug builds are slower)")
    }

    /// Sends `data` from one fd, reads it at the other, checks it; seconds taken.
    func transfer(_ data: [UInt8], from: Int32, to: Int32) throws -> Double {
        let start = Date()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { try? IO.writeAll(from, data); done.signal() }
        let got = IO.readExactly(to, data.count)
        let t = Date().timeIntervalSince(start)
        done.wait()
        XCTAssertEqual(got.count, data.count)
        XCTAssertEqual(IO.checksum(got), IO.checksum(data))
        return t
    }

    /// A local reader that never reads fills only its own stream's window.
    func testSlowReaderDoesNotStallOtherStreams() throws {
        let m = try MuxPair()
        let (sh, sg) = try m.connect(port: 801)   // the guest never reads sg
        let (fh, fg) = try m.connect(port: 802)
        defer { close(sh); close(sg); close(fh); close(fg) }
        // Fill the slow stream until the host's socket takes no more.
        LocalSocket.setNonBlocking(sh)
        var stuffed = 0, refusals = 0
        let chunk = [UInt8](repeating: 7, count: 65536)
        while refusals < 10 {
            let n = chunk.withUnsafeBytes { send(sh, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { refusals += 1; _ = IO.timedOut(fg, ms: 20); continue }
            refusals = 0
            stuffed += n
        }
        XCTAssertGreaterThan(stuffed, 256 * 1024, "more than the window went into the slow stream")
        let data = IO.pattern(4 << 20, seed: 9)
        _ = try transfer(data, from: fh, to: fg)
        XCTAssertEqual(IO.readExactly(sg, 1000), [UInt8](repeating: 7, count: 1000), "the slow stream still delivers when read")
    }

    /// The agent's data stream, pinned: a command's last bytes (its exit
    /// code) are written and the socket closed while they still wait in the
    /// mux's end (here: no credit left), and then a DATA frame arrives for
    /// that stream (the caller's stdin EOF). Sending it to the closed user
    /// fails with EPIPE; that must not throw the unread bytes away: the
    /// other side still reads every byte, then EOF.
    func testLastBytesOfAClosedWriterSurviveDataArrivingForIt() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 520)
        defer { close(h) }
        // The guest writes until the stream stalls: the host reads nothing,
        // so the guest's credit runs out with bytes left unread in its mux's end.
        let data = IO.pattern(4 << 20, seed: 21)
        LocalSocket.setNonBlocking(g)
        var sent = 0, refusals = 0
        while refusals < 10 && sent < data.count {
            let n = data.withUnsafeBytes { send(g, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { refusals += 1; _ = poll(nil, 0, 20); continue }
            refusals = 0
            sent += n
        }
        XCTAssertLessThan(sent, data.count, "the stream stalled")
        XCTAssertGreaterThan(Self.unread(g), 0, "bytes wait unread in the guest mux's end")
        close(g)
        // The host's bytes for the closed guest user. Once the host mux took
        // them (h's queue is empty), a new stream is a barrier: the guest
        // handles the DATA frame before the ACCEPT that completes its dial.
        try IO.writeAll(h, Array("stdin EOF".utf8))
        let deadline = Date().addingTimeInterval(30)
        while Self.unread(h) > 0 && Date() < deadline { _ = poll(nil, 0, 1) }
        XCTAssertEqual(Self.unread(h), 0, "the host mux read the host's bytes")
        let (bh, bg) = try m.connect(port: 521)
        close(bh); close(bg)
        let got = IO.readAll(h)
        XCTAssertEqual(got.count, sent, "every byte the guest wrote before closing reaches the host")
        XCTAssertTrue(got == Array(data[0..<sent]), "in order")
        XCTAssertEqual(m.host.stats.violations + m.guest.stats.violations, 0)
    }

    /// Bytes sent on `fd` that its peer has not read yet (SIOCOUTQ).
    static func unread(_ fd: Int32) -> Int {
        var n: Int32 = 0
        return vs_ioctl_int(fd, vs_siocoutq(), &n) == 0 ? Int(n) : -1
    }

    func testDescriptorPassedWithBytesBecomesAStream() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 512)
        defer { close(h); close(g) }
        var sp: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sp), 0)
        // Bytes before, the message with the descriptor, bytes after.
        try IO.writeAll(h, Array("before|".utf8))
        let msg = Array("MSG-WITH-FD".utf8)
        XCTAssertEqual(msg.withUnsafeBytes { LocalSocket.send(h, $0, fds: [sp[0]]) }, msg.count)
        close(sp[0])
        try IO.writeAll(h, Array("|after".utf8))
        // The guest receives the same bytes and, within the message's bytes, one new socket.
        var fds: [Int32] = []
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64)
        var fdAt = -1
        while got.count < 7 + msg.count + 6 {
            let n = buf.withUnsafeMutableBytes { LocalSocket.receive(g, $0.baseAddress!, 1, fds: &fds) }
            if n < 0 && errno == EAGAIN { _ = IO.timedOut(g, ms: 1000); continue }
            XCTAssertGreaterThan(n, 0); if n <= 0 { break }
            got += buf[0..<n]
            if !fds.isEmpty && fdAt < 0 { fdAt = got.count - 1 }
        }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "before|MSG-WITH-FD|after")
        XCTAssertEqual(fds.count, 1)
        XCTAssertTrue((7..<7 + msg.count).contains(fdAt), "the descriptor came with the message's bytes (at \(fdAt))")
        guard let passed = fds.first else { return }
        defer { close(passed) }
        XCTAssertTrue(LocalSocket.isStreamSocket(passed))
        // Both ways through the new stream, then its EOF.
        try IO.writeAll(passed, Array("ping".utf8))
        XCTAssertEqual(IO.readExactly(sp[1], 4), Array("ping".utf8))
        try IO.writeAll(sp[1], Array("pong".utf8))
        XCTAssertEqual(IO.readExactly(passed, 4), Array("pong".utf8))
        close(sp[1])
        XCTAssertEqual(IO.readAll(passed), [], "the host end's close reaches the guest")
    }

    /// odysseyd restarts: a new host session connects to the same chardev
    /// while the guest keeps running; old streams close, new ones work.
    func testHostReconnectResyncsAndClosesOldStreams() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 512)
        defer { close(h); close(g) }
        m.host.stop()
        XCTAssertEqual(IO.readAll(g), [], "the guest's old stream ends")
        let host2 = try MuxSession(role: .host, transport: UnixSocketTransport(path: m.chardev), limits: MuxPair.fast()) { _ in }
        defer { host2.stop() }
        let l = try host2.listen(port: 512)
        defer { close(l.fd) }
        let g2 = try m.guest.dial(port: 512, timeoutNs: 30_000_000_000)
        defer { close(g2) }
        XCTAssertTrue(l.waitConnected(timeoutNs: 30_000_000_000))
        try IO.writeAll(g2, Array("again".utf8))
        XCTAssertEqual(IO.readExactly(l.fd, 5), Array("again".utf8))
        XCTAssertGreaterThanOrEqual(m.guest.stats.sessions, 2)
    }

    /// The guest restarts (a new guest session on the same port): the host's
    /// streams of the old one close, and its listeners serve the new one.
    func testGuestRestartClosesHostStreams() throws {
        let m = try MuxPair()
        let (h, g) = try m.connect(port: 512)
        defer { close(h); close(g) }
        let waiting = try m.host.listen(port: 513)
        defer { close(waiting.fd) }
        m.guest.stop()
        XCTAssertEqual(IO.readAll(h), [], "the host's stream of the old guest ends")
        let lfd = try AcceptingTransport.listen(path: m.chardev)
        m.guest = try MuxSession(role: .guest, transport: AcceptingTransport(listenFD: lfd, label: "guest 2"), limits: MuxPair.fast()) { _ in }
        let g2 = try m.guest.dial(port: 513, timeoutNs: 30_000_000_000)
        defer { close(g2) }
        XCTAssertTrue(waiting.waitConnected(timeoutNs: 30_000_000_000), "a listener made before the restart serves the new guest")
    }
}

final class LockedArray<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ x: T) { lock.lock(); items.append(x); lock.unlock() }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return items }
}
