// Round trips, the incremental reader, the blocking stream, the data client,
// and a seeded fuzz loop: random and mutated bytes only ever give QrexecError.
import Glibc
import Qrexec
import XCTest

final class StreamTests: XCTestCase {
    static let samples: [(Direction, QrexecMessage)] = [
        (.hostToAgent, .execCmdline(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:ls -l"))),
        (.hostToAgent, .justExec(ExecParams(connectDomain: 7, connectPort: 9999, cmdline: "u:x"))),
        (.hostToAgent, .serviceConnect(ExecParams(connectDomain: 1, connectPort: 514, cmdline: "SOCKET3"))),
        (.hostToAgent, .serviceRefused(ServiceParams(ident: "0123456789012345678901234567890"))),
        (.agentToHost, .triggerService3(TriggerService3(targetDomain: "vault", ident: "a", serviceName: "qubes.Gpg"))),
        (.agentToHost, .triggerService4(TriggerService4(sourceDomain: "work", targetDomain: "@default", ident: "b", serviceName: "x+y"))),
        (.agentToHost, .connectionTerminated(connectDomain: 0, connectPort: 513)),
        (.serviceToClient, .stdout(Array(repeating: 1, count: 65536))),
        (.serviceToClient, .stdout([])),
        (.serviceToClient, .stderr([1, 2, 3])),
        (.serviceToClient, .exitCode(Int32.min)),
        (.clientToService, .stdin(Array("abc".utf8))),
        (.clientToService, .stdin([])),
    ]

    func testRoundTripEveryTypeThroughReaderFedByteByByte() throws {
        for (d, m) in Self.samples {
            XCTAssertEqual(try MessageRules.decode(m.encoded, version: QrexecVersion.current, direction: d), m)
            var r = MessageReader(direction: d)
            let bytes = QrexecMessage.hello(PeerInfo(version: 4)).encoded + m.encoded
            var out: [QrexecMessage] = []
            for b in bytes { r.feed([b]); while let x = try r.next() { out.append(x) } }
            XCTAssertEqual(out, [.hello(PeerInfo(version: 4)), m])
            XCTAssertEqual(r.version, 4)
            XCTAssertEqual(r.pending, 0)
        }
    }

    func testReaderAdmitsHeaderBeforeBody() {
        var r = MessageReader(direction: .agentToHost, version: 4)
        r.feed(MsgHeader(type: .triggerService3, len: 0x7fff_ffff).bytes)   // no body at all
        XCTAssertThrowsError(try r.next()) { e in
            guard case .badLength(.triggerService3, _, _)? = e as? QrexecError else { return XCTFail("\(e)") }
        }
    }

    func testSeededFuzzNeverTraps() {
        var rng = SplitMix64(seed: 0x0d15_5e7)
        let dirs: [Direction] = [.hostToAgent, .agentToHost, .serviceToClient, .clientToService]
        var accepted = 0, refused = 0
        for i in 0..<20_000 {
            let d = dirs[i % 4]
            var bytes: [UInt8]
            if i % 2 == 0 {
                // Pure noise, with a plausible header half the time.
                bytes = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if i % 4 == 0, bytes.count >= 8 {
                    let types: [UInt32] = [0x200, 0x201, 0x202, 0x203, 0x211, 0x212, 0x213, 0x300, 0x190, 0x191, 0x192, 0x193]
                    let t = types[Int(rng.next() % UInt64(types.count))]
                    bytes.replaceSubrange(0..<8, with: MsgHeader(type: MessageType(rawValue: t), len: UInt32(bytes.count - 8)).bytes)
                }
            } else {
                // A valid message with a few bytes flipped.
                bytes = Self.samples[Int(rng.next() % UInt64(Self.samples.count))].1.encoded
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            }
            let version: UInt32? = i % 5 == 0 ? nil : (i % 3 == 0 ? 3 : 4)
            do { _ = try MessageRules.decode(bytes, version: version, direction: d); accepted += 1 } catch { refused += 1 }
            var r = MessageReader(direction: d, version: version)
            r.feed(bytes)
            do { while try r.next() != nil {} } catch {}
        }
        XCTAssertEqual(accepted + refused, 20_000)
        XCTAssertGreaterThan(refused, 0)
    }

    func socketpair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    func testBlockingStreamHandshakeAndErrors() throws {
        let (a, b) = socketpair()
        defer { close(a) }
        var host = QrexecStream(fd: a, incoming: .agentToHost)
        var agent = QrexecStream(fd: b, incoming: .hostToAgent, ours: 3)
        try agent.send(.hello(PeerInfo(version: 3)))
        try host.send(.hello(PeerInfo(version: 4)))
        XCTAssertEqual(try host.receive(), .hello(PeerInfo(version: 3)))
        XCTAssertEqual(host.version, 3)
        XCTAssertEqual(try agent.receive(), .hello(PeerInfo(version: 4)))
        XCTAssertEqual(agent.version, 3)
        try host.send(.execCmdline(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:true")))
        XCTAssertEqual(try agent.receive(), .execCmdline(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:true")))
        // Truncated inside a message, then EOF between messages.
        _ = Array(MsgHeader(type: .connectionTerminated, len: 8).bytes + [1, 2]).withUnsafeBytes { write(b, $0.baseAddress, $0.count) }
        close(b)
        XCTAssertThrowsError(try host.receive()) { XCTAssertEqual($0 as? QrexecError, .truncated(expected: 8, got: 2)) }
        XCTAssertThrowsError(try host.receive()) { XCTAssertEqual($0 as? QrexecError, .closed) }
    }

    func testDataClientAgainstAFakeService() throws {
        let (a, b) = socketpair()
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&outPipe), 0); XCTAssertEqual(pipe(&errPipe), 0); XCTAssertEqual(pipe(&inPipe), 0)
        _ = Array("ping".utf8).withUnsafeBytes { write(inPipe[1], $0.baseAddress, $0.count) }
        close(inPipe[1])
        let service = Thread {
            var s = QrexecStream(fd: b, incoming: .clientToService)
            do {
                try s.handshake()
                var got: [UInt8] = []
                while true {
                    let m = try s.receive()
                    if case .stdin(let d) = m { if d.isEmpty { break }; got += d }
                }
                try s.send(.stdout(got + Array("-pong".utf8)))
                try s.send(.stdout([]))
                try s.send(.stderr(Array("warn".utf8)))
                try s.send(.exitCode(5))
            } catch { XCTFail("fake service: \(error)") }
            close(b)
        }
        service.start()
        let code = try DataClient.run(channel: a, stdin: inPipe[0], stdout: outPipe[1], stderr: errPipe[1])
        close(a); close(outPipe[1]); close(errPipe[1])
        XCTAssertEqual(code, 5)
        func drain(_ fd: Int32) -> String {
            var all: [UInt8] = [], buf = [UInt8](repeating: 0, count: 256)
            while true { let n = read(fd, &buf, 256); if n <= 0 { break }; all += buf[0..<n] }
            close(fd); return String(decoding: all, as: UTF8.self)
        }
        XCTAssertEqual(drain(outPipe[0]), "ping-pong")
        XCTAssertEqual(drain(errPipe[0]), "warn")
        close(inPipe[0])
    }

    func testDataClientReportsMissingExitCode() {
        let (a, b) = socketpair()
        _ = QrexecMessage.hello(PeerInfo(version: 4)).encoded.withUnsafeBytes { write(b, $0.baseAddress, $0.count) }
        close(b)
        XCTAssertThrowsError(try DataClient.run(channel: a, stdin: nil, stdout: 1, stderr: 2)) { XCTAssertEqual($0 as? QrexecError, .closed) }
        close(a)
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
