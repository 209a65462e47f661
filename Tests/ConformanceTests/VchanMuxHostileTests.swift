// A hostile guest against the host's mux session: each malformed kind of
// frame closes that session (logged, counted), the host process goes on,
// and the session reconnects and serves a well-behaved guest afterwards.
// Plus a seeded fuzz loop over the frame parser and over a live session.
import Foundation
import StreamMux
import XCTest

final class VchanMuxHostileTests: XCTestCase {
    /// The test is the guest: it accepts the host's connections itself.
    final class RawGuest {
        let dir: String, chardev: String, lfd: Int32
        let host: MuxSession
        let lines = LogLines()

        init() throws {
            dir = "/tmp/omh-" + String(UUID().uuidString.prefix(8))
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            chardev = dir + "/vchan.sock"
            lfd = try AcceptingTransport.listen(path: chardev)
            let lines = self.lines
            host = try MuxSession(role: .host, transport: UnixSocketTransport(path: chardev), limits: MuxPair.fast()) { lines.add($0) }
        }

        deinit { host.stop(); close(lfd); try? FileManager.default.removeItem(atPath: dir) }

        /// The host's next connection, HELLOs exchanged.
        func next() -> Int32 {
            let fd = accept(lfd, nil, nil)
            var tv = timeval(tv_sec: 60, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let hello = IO.readExactly(fd, 16 + 24)
            let nonce = hello.count == 40 ? hello[24..<32].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } : 0
            try? IO.writeAll(fd, Frame.hello(nonce: 0x600d, echo: nonce).encoded)
            return fd
        }
    }

    static func frame(_ t: UInt8, stream: UInt32, length: UInt32 = 0, aux: UInt32 = 0, flags: UInt8 = 0, payload: [UInt8] = []) -> [UInt8] {
        var b: [UInt8] = [0x4D, 0x58, t, flags]
        for v in [stream, length, aux] { for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        return b + payload
    }

    func testEachMalformedKindClosesTheSessionOnly() throws {
        let g = try RawGuest()
        let waiting = try g.host.listen(port: 901)
        defer { close(waiting.fd) }
        var opened: UInt32 = 1
        func openStream(_ fd: Int32) throws -> UInt32 {
            // A fresh listener each time (the last one was taken).
            let l = try g.host.listen(port: 900 + 100 + opened)
            keep.append(l.fd)
            let id = opened
            opened += 2
            try IO.writeAll(fd, Self.frame(2, stream: id, aux: 900 + 100 + id))
            return id
        }
        var keep: [Int32] = []
        defer { for f in keep { close(f) } }
        let big = [UInt8](repeating: 1, count: 65536)
        let cases: [(String, String, (Int32) throws -> [UInt8])] = [
            ("bad magic", "bad frame header", { _ in [UInt8](repeating: 0xEE, count: 16) }),
            ("unknown type", "bad frame header", { _ in Self.frame(99, stream: 1) }),
            ("oversized DATA", "DATA of 70000 bytes", { _ in Self.frame(5, stream: 1, length: 70_000) }),
            ("DATA for an unknown stream", "unknown stream 7", { _ in Self.frame(5, stream: 7, length: 1, payload: [1]) }),
            ("OPEN with a host id", "OPEN with stream id 2", { _ in Self.frame(2, stream: 2, aux: 901) }),
            ("OPEN ids going back", "OPEN with stream id 3", { _ in Self.frame(2, stream: 5, aux: 4444) + Self.frame(2, stream: 3, aux: 4444) }),
            ("OPEN of port 0", "OPEN with port 0", { _ in Self.frame(2, stream: 1, aux: 0) }),
            ("HELLO without magic", "HELLO without the magic", { _ in Self.frame(1, stream: 0, length: 24, payload: [UInt8](repeating: 0, count: 24)) }),
            ("CREDIT beyond the window", "credit beyond the window", { fd in let id = try openStream(fd); return Self.frame(6, stream: id, aux: 1) }),
            ("EOF twice", "EOF twice", { fd in let id = try openStream(fd); return Self.frame(7, stream: id) + Self.frame(7, stream: id) }),
            ("DATA beyond the credit", "beyond the window", { fd in
                let id = try openStream(fd)
                return (0..<40).flatMap { _ in Self.frame(5, stream: id, length: UInt32(big.count), payload: big) } }),
            ("descriptors passed by the guest", "the guest passed descriptors", { fd in
                let id = try openStream(fd)
                return Self.frame(5, stream: id, length: 6, flags: 1, payload: [1, 2, 0, 0, 0, 9]) }),
            ("ACCEPT of a stream the host did not dial", "which is not dialling", { _ in Self.frame(3, stream: 1) }),
        ]
        for (i, (name, why, make)) in cases.enumerated() {
            opened = 1
            let fd = g.next()
            let bad = try make(fd)
            try? IO.writeAll(fd, bad)
            _ = IO.readAll(fd)   // until the host hangs up
            close(fd)
            XCTAssertEqual(g.host.stats.violations, i + 1, "\(name): closes the session")
            XCTAssertTrue(g.host.stats.lastViolation?.contains(why) == true, "\(name): \(g.host.stats.lastViolation ?? "no violation")")
        }
        XCTAssertEqual(g.lines.all.filter { $0.contains("closing the session") }.count, cases.count, "each one logged")
        // The listener made before all that still serves a well-behaved guest.
        let guest = try MuxSession(role: .guest, transport: AcceptingTransport(listenFD: dup(g.lfd), label: "good guest"),
                                   limits: MuxPair.fast()) { _ in }
        defer { guest.stop() }
        let s = try guest.dial(port: 901, timeoutNs: 60_000_000_000)
        defer { close(s) }
        XCTAssertTrue(waiting.waitConnected(timeoutNs: 60_000_000_000))
        try IO.writeAll(s, Array("fine".utf8))
        XCTAssertEqual(IO.readExactly(waiting.fd, 4), Array("fine".utf8))
    }

    /// Random and mutated byte streams: the parser only ever returns frames
    /// that pass FrameRules, or throws a violation; it never traps.
    func testSeededFuzzOfTheFrameParser() {
        var rng = SplitMix(seed: 0x6d75_78)
        let samples: [[UInt8]] = [
            Frame.hello(nonce: 1, echo: 2).encoded, Self.frame(2, stream: 1, aux: 512), Self.frame(3, stream: 1),
            Self.frame(5, stream: 1, length: 3, payload: [1, 2, 3]), Self.frame(6, stream: 1, aux: 100),
            Self.frame(7, stream: 1), Self.frame(8, stream: 1), Self.frame(5, stream: 1, length: 6, flags: 1, payload: [1, 4, 0, 0, 0, 9]),
        ]
        var frames = 0, violations = 0
        for i in 0..<20_000 {
            var bytes: [UInt8] = Frame.hello(nonce: 5, echo: 0).encoded
            if i % 2 == 0 {
                bytes += (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                for _ in 0..<(1 + Int(rng.next() % 4)) { bytes += samples[Int(rng.next() % UInt64(samples.count))] }
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    let at = 40 + Int(rng.next() % UInt64(bytes.count - 40))
                    bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            }
            var r = FrameReader()
            // Fed in random pieces: framing must not depend on read sizes.
            var off = 0
            do {
                while off < bytes.count {
                    let n = min(bytes.count - off, 1 + Int(rng.next() % 64))
                    r.feed(Array(bytes[off..<off + n]))
                    off += n
                    while let f = try r.next() {
                        XCTAssertNil(FrameRules.check(f.header)); XCTAssertNil(FrameRules.check(f))
                        frames += 1
                    }
                }
            } catch {
                guard case .violation = error else { return XCTFail("\(error)") }
                violations += 1
            }
        }
        XCTAssertGreaterThan(frames, 20_000)
        XCTAssertGreaterThan(violations, 1000)
    }

    /// Mutated frames into a live host session: it survives each and keeps serving.
    func testSeededFuzzOfALiveHostSession() throws {
        let g = try RawGuest()
        var rng = SplitMix(seed: 0xf00d)
        let l = try g.host.listen(port: 512)
        defer { close(l.fd) }
        for _ in 0..<40 {
            let fd = g.next()
            var bytes = Self.frame(2, stream: 1, aux: 512) + Self.frame(5, stream: 1, length: 4, payload: [1, 2, 3, 4])
                + Self.frame(6, stream: 1, aux: 9) + Self.frame(7, stream: 1) + Self.frame(8, stream: 1)
            for _ in 0..<(1 + Int(rng.next() % 3)) { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            try? IO.writeAll(fd, bytes)
            shutdown(fd, Int32(SHUT_WR))
            _ = IO.readAll(fd)
            close(fd)
        }
        XCTAssertGreaterThan(g.host.stats.violations, 0)
        let guest = try MuxSession(role: .guest, transport: AcceptingTransport(listenFD: dup(g.lfd), label: "good guest"),
                                   limits: MuxPair.fast()) { _ in }
        defer { guest.stop() }
        let l2 = try g.host.listen(port: 600)
        defer { close(l2.fd) }
        let s = try guest.dial(port: 600, timeoutNs: 60_000_000_000)
        defer { close(s) }
        // The listener's fd is the socket only after a look at its state (MuxListener.fd).
        XCTAssertTrue(l2.waitConnected(timeoutNs: 60_000_000_000))
        try IO.writeAll(s, Array("alive".utf8))
        XCTAssertEqual(IO.readExactly(l2.fd, 5), Array("alive".utf8))
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
