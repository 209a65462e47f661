// Malformed agent messages close only that domain's link; the channel path
// design keeps each domain to its own directory.
import Foundation
import Host
import Qrexec
import VchanSocketCore
import XCTest

final class IsolationTests: XCTestCase {
    /// Bytes of one message with an arbitrary header.
    static func raw(_ type: UInt32, _ body: [UInt8], len: UInt32? = nil) -> [UInt8] {
        MsgHeader(type: MessageType(rawValue: type), len: len ?? UInt32(body.count)).bytes + body
    }

    static func hello(_ v: UInt32 = QrexecVersion.current) -> [UInt8] { QrexecMessage.hello(PeerInfo(version: v)).encoded }

    static func field(_ s: String, _ size: Int) -> [UInt8] {
        var b = Array(s.utf8); b += [UInt8](repeating: 0, count: size - b.count); return b
    }

    static func trigger3(target: [UInt8] = field("work", 64), ident: [UInt8] = field("1", 32), service: [UInt8] = Array("qubes.Test\0".utf8)) -> [UInt8] {
        raw(0x212, target + ident + service)
    }

    /// Each case: what a fake agent sends after connecting (a valid HELLO first unless the case is about HELLO).
    static let cases: [(String, [UInt8])] = [
        ("hello with length 5", raw(0x300, [4, 0, 0, 0, 0])),
        ("hello with length 0", raw(0x300, [])),
        ("first message not a hello", trigger3()),
        ("protocol version 2", hello(2)),
        ("duplicate hello", hello() + hello()),
        ("unknown type", hello() + raw(0x999, [])),
        ("unknown type with huge length", hello() + raw(0x7777, [], len: 0xffff_ffff)),
        ("EXEC_CMDLINE from an agent", hello() + QrexecMessage.execCmdline(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:true")).encoded),
        ("JUST_EXEC from an agent", hello() + QrexecMessage.justExec(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:true")).encoded),
        ("SERVICE_CONNECT from an agent", hello() + QrexecMessage.serviceConnect(ExecParams(connectDomain: 0, connectPort: 513, cmdline: "1")).encoded),
        ("SERVICE_REFUSED from an agent", hello() + QrexecMessage.serviceRefused(ServiceParams(ident: "1")).encoded),
        ("DATA_STDIN on the control channel", hello() + QrexecMessage.stdin([1, 2]).encoded),
        ("DATA_STDOUT on the control channel", hello() + QrexecMessage.stdout([1]).encoded),
        ("DATA_STDERR on the control channel", hello() + QrexecMessage.stderr([1]).encoded),
        ("DATA_EXIT_CODE on the control channel", hello() + QrexecMessage.exitCode(0).encoded),
        ("TRIGGER3 with len == sizeof(params) (QSB-089)", hello() + raw(0x212, field("work", 64) + field("1", 32))),
        ("TRIGGER3 too long", hello() + raw(0x212, [], len: 96 + 65001)),
        ("TRIGGER3 service name not terminated", hello() + trigger3(service: Array("qubes.Test".utf8))),
        ("TRIGGER3 service name with interior NUL", hello() + trigger3(service: Array("qubes\0Test\0".utf8))),
        ("TRIGGER3 empty service name", hello() + trigger3(service: [0])),
        ("TRIGGER3 service name starting with +", hello() + trigger3(service: Array("+arg\0".utf8))),
        ("TRIGGER3 ident with a bad character", hello() + trigger3(ident: field("1$2", 32))),
        ("TRIGGER3 ident not NUL-padded", hello() + trigger3(ident: field("1", 32).enumerated().map { $0.offset == 5 ? 65 : $0.element })),
        ("TRIGGER3 ident not terminated", hello() + trigger3(ident: [UInt8](repeating: 65, count: 32))),
        ("TRIGGER3 target not terminated", hello() + trigger3(target: [UInt8](repeating: 97, count: 64))),
        ("TRIGGER4 at version 3", hello(3) + raw(0x213, field("a", 64) + field("b", 64) + field("1", 32) + Array("s\0".utf8))),
        ("TRIGGER4 with len == sizeof(params)", hello() + raw(0x213, field("a", 64) + field("b", 64) + field("1", 32))),
        ("CONNECTION_TERMINATED with length 4", hello() + raw(0x211, [0, 0, 0, 0])),
        ("CONNECTION_TERMINATED with length 12", hello() + raw(0x211, [UInt8](repeating: 0, count: 12))),
    ]

    func testMalformedMessagesCloseOnlyThatLink() throws {
        let f = try AgentFixture()
        let good = try f.readyDomain("work")
        for (i, (name, bytes)) in Self.cases.enumerated() {
            let domain = "bad\(i)"
            let closed = DispatchSemaphore(value: 0)
            let reason = LockedBox("")
            let l = try f.link(domain) { _, why in reason.set(why); closed.signal() }
            let fake = try SocketChannel.connect(path: "\(f.socketDir)/\(domain)/vchan.dom0.\(domain).512.sock", timeoutNs: 10_000_000_000)
            try bytes.withUnsafeBytes { try fake.sendAll($0.baseAddress!, $0.count) }
            XCTAssertEqual(closed.wait(timeout: .now() + 30), .success, "\(name): link not closed")
            XCTAssertTrue(reason.get().contains("malformed"), "\(name): closed for another reason: \(reason.get())")
            if case .closed = l.state {} else { XCTFail("\(name): link state \(l.state)") }
            // The host closed its end: after at most the host's HELLO, the fake agent sees EOF.
            var buf = [UInt8](repeating: 0, count: 64)
            var total = 0
            var sawEOF = false
            while total <= 12 && !sawEOF {
                do { total += try buf.withUnsafeMutableBytes { try fake.read($0.baseAddress!, $0.count) } } catch { sawEOF = true }
            }
            XCTAssertTrue(sawEOF, "\(name): the host did not close the channel")
            fake.close()
        }
        // The well-behaved domain never noticed.
        XCTAssertEqual(good.state, .ready(version: QrexecVersion.current))
        XCTAssertEqual(try f.run(good, "echo fine").out, "fine\n")
    }

    func testValidTriggerIsRefusedWithoutBrokerAndLinkStays() throws {
        let f = try AgentFixture()
        let l = try f.link("caller")
        let fake = try SocketChannel.connect(path: "\(f.socketDir)/caller/vchan.dom0.caller.512.sock", timeoutNs: 10_000_000_000)
        var stream = QrexecStream(fd: fake.fd, incoming: .hostToAgent)
        XCTAssertEqual(try stream.handshake(), QrexecVersion.current)
        try l.waitReady(timeoutMs: 20_000)
        try stream.send(.triggerService4(TriggerService4(sourceDomain: "forged", targetDomain: "vault", ident: "7 x", serviceName: "qubes.Get$Date+a")))
        XCTAssertEqual(try stream.receive(), .serviceRefused(ServiceParams(ident: "7 x")))
        try stream.send(.connectionTerminated(connectDomain: 0, connectPort: 999))   // unknown port: ignored
        try stream.send(.triggerService3(TriggerService3(targetDomain: "vault", ident: "8", serviceName: "qubes.A")))
        XCTAssertEqual(try stream.receive(), .serviceRefused(ServiceParams(ident: "8")))
        XCTAssertEqual(l.state, .ready(version: QrexecVersion.current))
    }

    func testBrokerHookGetsSanitisedRequestWithChannelSource() throws {
        let f = try AgentFixture()
        let got = LockedBox<AgentLink.ServiceRequest?>(nil)
        let seen = DispatchSemaphore(value: 0)
        let l = try AgentLink(domain: "caller", vchan: f.vchan, logger: f.logger, onTrigger: { _, r in got.set(r); seen.signal() })
        defer { l.close() }
        let fake = try SocketChannel.connect(path: "\(f.socketDir)/caller/vchan.dom0.caller.512.sock", timeoutNs: 10_000_000_000)
        var stream = QrexecStream(fd: fake.fd, incoming: .hostToAgent)
        try stream.handshake()
        try stream.send(.triggerService4(TriggerService4(sourceDomain: "dom0", targetDomain: "vault x", ident: "9", serviceName: "qubes.Get$Date+a/b")))
        XCTAssertEqual(seen.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(got.get(), AgentLink.ServiceRequest(source: "caller", target: "vault_x", serviceName: "qubes.Get_Date+a_b", ident: "9"))
    }

    func testChannelPathsStayInTheDomainsOwnDirectory() throws {
        let f = try AgentFixture()
        let work = try f.link("work")
        let personal = try f.link("personal")
        let fm = FileManager.default
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: f.socketDir).sorted(), ["personal", "work"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: f.socketDir + "/work"), ["vchan.dom0.work.512.sock"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: f.socketDir + "/personal"), ["vchan.dom0.personal.512.sock"])
        XCTAssertEqual(try fm.attributesOfItem(atPath: f.socketDir)[.posixPermissions] as? Int, 0o700)
        XCTAssertEqual(try fm.attributesOfItem(atPath: f.socketDir + "/work")[.posixPermissions] as? Int, 0o755)

        // An agent that claims to be `personal` but sees only work's directory
        // finds no channel; the real `work` agent connects.
        let impostor = Process()
        impostor.executableURL = URL(fileURLWithPath: AgentBuild.agent)
        impostor.environment = ["VCHAN_SOCKET_DIR": f.socketDir + "/work", "ODYSSEY_DOMAIN": "personal", "ODYSSEY_AGENT_NO_INIT": "1"]
        impostor.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try impostor.run()
        defer { impostor.terminate(); impostor.waitUntilExit() }
        try f.startAgent("work")
        try work.waitReady(timeoutMs: 20_000)
        XCTAssertEqual(try f.run(work, "echo w").out, "w\n")
        XCTAssertEqual(personal.state, .waiting)

        // Once accepted, the channel file is gone: nobody else can connect.
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: f.socketDir + "/work"), [])
        XCTAssertThrowsError(try SocketChannel.connect(path: f.socketDir + "/work/vchan.dom0.work.512.sock", timeoutNs: 20_000_000))

        // Names become path components only if they are domain names.
        for bad in ["../personal", "work/x", ".hidden", "", "x y", String(repeating: "a", count: 32)] {
            XCTAssertThrowsError(try f.vchan.serverInit(VchanEndpoint(local: "dom0", remote: bad, port: 600)), bad)
        }
        XCTAssertThrowsError(try f.vchan.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 0)))
        XCTAssertThrowsError(try f.vchan.serverInit(VchanEndpoint(local: "dom0", remote: "dom0", port: 600)))
        // Domain-to-domain channels are made with fd passing, not by path.
        XCTAssertThrowsError(try f.vchan.serverInit(VchanEndpoint(local: "work", remote: "personal", port: 600))) { e in
            XCTAssertEqual((e as? OdysseyError)?.code, .unsupported)
        }
        XCTAssertTrue(f.vchan.canPassFDs)
    }

    /// The vchan slots with libvchan semantics, through the host wrapper.
    func testVchanSlotSemantics() throws {
        let f = try AgentFixture()
        let server = try f.vchan.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 700))
        XCTAssertEqual(try server.state(), .waiting)
        XCTAssertEqual(try server.dataReady(), 0)
        XCTAssertEqual(try server.bufferSpace(), 0)
        let fd = try server.pollFD()
        let client = try SocketChannel.connect(path: f.socketDir + "/work/vchan.dom0.work.700.sock", timeoutNs: 1_000_000_000)
        XCTAssertEqual(try server.state(), .connected)
        XCTAssertEqual(try server.pollFD(), fd, "fd_for_poll must not change when the client connects")
        XCTAssertGreaterThan(try server.bufferSpace(), 0)
        let msg = Array("hello vchan".utf8)
        try msg.withUnsafeBytes { try client.sendAll($0.baseAddress!, $0.count) }
        // data_ready reports what is queued; recv takes exactly that much.
        var ready = 0
        for _ in 0..<1000 where ready < msg.count { ready = try server.dataReady(); if ready < msg.count { usleep(1000) } }
        XCTAssertEqual(ready, msg.count)
        var got = [UInt8](repeating: 0, count: 5)
        try got.withUnsafeMutableBytes { try server.recv($0) }
        XCTAssertEqual(got, Array("hello".utf8))
        var rest = [UInt8](repeating: 0, count: 64)
        let n = try rest.withUnsafeMutableBytes { try server.read($0) }   // partial
        XCTAssertEqual(Array(rest[0..<n]), Array(" vchan".utf8))
        try server.send(Array("back".utf8))
        var back = [UInt8](repeating: 0, count: 4)
        try back.withUnsafeMutableBytes { try client.recvAll($0.baseAddress!, 4) }
        XCTAssertEqual(back, Array("back".utf8))
        client.close()
        XCTAssertThrowsError(try server.wait())   // the peer closed: an error, not a hang
        XCTAssertEqual(try server.state(), .disconnected)
        XCTAssertEqual(try rest.withUnsafeMutableBytes { try server.read($0) }, 0, "EOF reads as 0")
        server.close()
        XCTAssertThrowsError(try server.state())
    }
}

final class LockedBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
