// The StreamMux engine between a host session and a guest session in this
// process, over a real Unix socket standing in for QEMU's chardev socket:
// the host connects to it exactly as the vchan-virtio-serial plugin does to
// QEMU's, and the guest side takes each accepted connection as its port.
import Foundation
import StreamMux
import XCTest

final class MuxPair {
    let dir: String
    let chardev: String
    let host: MuxSession
    var guest: MuxSession
    let lines = LogLines()

    static func fast() -> MuxSession.Limits {
        var l = MuxSession.Limits()
        l.maxBackoffNs = 20_000_000
        l.violationPauseNs = 50_000_000
        return l
    }

    init(guestLimits: MuxSession.Limits = MuxPair.fast()) throws {
        dir = "/tmp/omx-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chardev = dir + "/vchan.sock"
        let lfd = try AcceptingTransport.listen(path: chardev)
        let lines = self.lines
        guest = try MuxSession(role: .guest, transport: AcceptingTransport(listenFD: lfd, label: "test chardev (guest side)"),
                               limits: guestLimits) { lines.add("guest: " + $0) }
        host = try MuxSession(role: .host, transport: UnixSocketTransport(path: chardev), limits: MuxPair.fast()) { lines.add("host: " + $0) }
    }

    deinit {
        host.stop()
        guest.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A listener on the host, the guest's dial of it, and the host's end.
    func connect(port: UInt32) throws -> (host: Int32, guest: Int32) {
        let l = try host.listen(port: port)
        let g = try guest.dial(port: port, timeoutNs: 30_000_000_000)
        XCTAssertTrue(l.waitConnected(timeoutNs: 30_000_000_000))
        return (l.fd, g)
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

enum IO {
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
            off += n
        }
    }

    /// Everything until EOF (at most `limit` bytes).
    static func readAll(_ fd: Int32, limit: Int = 1 << 30) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, min($0.count, count - out.count)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Deterministic bytes (a seeded xorshift), so a failure reproduces.
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count { x ^= x << 13; x ^= x >> 7; x ^= x << 17; words[i] = x }
        }
        return out
    }

    /// FNV-1a 64 over the bytes.
    static func checksum(_ b: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for x in b { h = (h ^ UInt64(x)) &* 0x100000001b3 }
        return h
    }

    static func timedOut(_ fd: Int32, ms: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, ms) == 0
    }
}
