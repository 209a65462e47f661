// One validator per message type: every malformed input is a typed error.
import Qrexec
import XCTest

func hdr(_ type: UInt32, _ len: UInt32) -> MsgHeader { MsgHeader(type: MessageType(rawValue: type), len: len) }
func field(_ s: String, _ size: Int) -> [UInt8] { var b = Array(s.utf8); b += [UInt8](repeating: 0, count: size - b.count); return b }
func raw(_ type: UInt32, _ body: [UInt8]) -> [UInt8] { hdr(type, UInt32(body.count)).bytes + body }

final class ValidatorTests: XCTestCase {
    let v = QrexecVersion.current

    func expect(_ bytes: [UInt8], version: UInt32?, _ d: Direction, _ want: QrexecError, line: UInt = #line) {
        XCTAssertThrowsError(try MessageRules.decode(bytes, version: version, direction: d), line: line) { e in
            XCTAssertEqual(e as? QrexecError, want, line: line)
        }
    }

    func testHeaderEncodingIsLittleEndian() {
        XCTAssertEqual(MsgHeader(type: .execCmdline, len: 0x0102_0304).bytes, [0x00, 0x02, 0, 0, 0x04, 0x03, 0x02, 0x01])
        XCTAssertEqual(MsgHeader(untrusted_bytes: [0x00, 0x03, 0, 0, 4, 0, 0, 0]), MsgHeader(type: .hello, len: 4))
        XCTAssertEqual(MessageType(rawValue: 0x1234), .unknown(0x1234))
        for t: UInt32 in [0x200, 0x201, 0x202, 0x203, 0x211, 0x212, 0x213, 0x300, 0x190, 0x191, 0x192, 0x193, 0, 0xffff_ffff] {
            XCTAssertEqual(MessageType(rawValue: t).rawValue, t)
        }
    }

    func testHello() throws {
        XCTAssertEqual(try MessageRules.decode(raw(0x300, [3, 0, 0, 0]), version: nil, direction: .agentToHost), .hello(PeerInfo(version: 3)))
        expect(raw(0x300, [3, 0, 0]), version: nil, .agentToHost, .badLength(.hello, len: 3, rule: "exactly 4"))
        expect(raw(0x300, [3, 0, 0, 0, 0]), version: nil, .hostToAgent, .badLength(.hello, len: 5, rule: "exactly 4"))
        expect(raw(0x300, [3, 0, 0, 0]), version: 3, .agentToHost, .duplicateHello)
        expect(QrexecMessage.exitCode(0).encoded, version: nil, .serviceToClient, .helloExpected(got: .dataExitCode))
        expect(raw(0x999, []), version: nil, .agentToHost, .unknownType(0x999))
        XCTAssertEqual(try QrexecVersion.negotiate(untrusted_theirs: 3), 3)
        XCTAssertEqual(try QrexecVersion.negotiate(untrusted_theirs: 99), QrexecVersion.current)
        XCTAssertThrowsError(try QrexecVersion.negotiate(untrusted_theirs: 2)) { XCTAssertEqual($0 as? QrexecError, .unsupportedVersion(2)) }
        var r = MessageReader(direction: .agentToHost)
        r.feed(raw(0x300, [2, 0, 0, 0]))
        XCTAssertThrowsError(try r.next()) { XCTAssertEqual($0 as? QrexecError, .unsupportedVersion(2)) }
    }

    func testExecFamily() throws {
        let ok = ExecParams(connectDomain: 0, connectPort: 513, cmdline: "root:echo hi")
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.execCmdline(ok).encoded, version: v, direction: .hostToAgent), .execCmdline(ok))
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.justExec(ok).encoded, version: v, direction: .hostToAgent), .justExec(ok))
        expect(raw(0x200, [0, 0, 0, 0, 1, 2, 0, 0]), version: v, .hostToAgent,
               .badLength(.execCmdline, len: 8, rule: "more than 8 and at most \(8 + ExecParams.maxCmdline + 1)"))
        expect(hdr(0x200, 8 + 65537).bytes, version: v, .hostToAgent,
               .badLength(.execCmdline, len: 8 + 65537, rule: "more than 8 and at most \(8 + ExecParams.maxCmdline + 1)"))
        expect(raw(0x200, [0, 0, 0, 0, 1, 2, 0, 0] + Array("root:x".utf8)), version: v, .hostToAgent, .notTerminated(.execCmdline, field: "cmdline"))
        expect(raw(0x201, [0, 0, 0, 0, 1, 2, 0, 0] + Array("root\0x\0".utf8)), version: v, .hostToAgent, .interiorNUL(.justExec, field: "cmdline"))
        // Direction: an agent never sends EXEC_CMDLINE.
        expect(QrexecMessage.execCmdline(ok).encoded, version: v, .agentToHost, .unexpectedType(.execCmdline, direction: .agentToHost))
        expect(QrexecMessage.execCmdline(ok).encoded, version: v, .clientToService, .unexpectedType(.execCmdline, direction: .clientToService))
    }

    func testServiceConnectAndRefused() throws {
        let sc = ExecParams(connectDomain: 5, connectPort: 600, cmdline: "12 ab")
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.serviceConnect(sc).encoded, version: v, direction: .hostToAgent), .serviceConnect(sc))
        expect(raw(0x202, [0, 0, 0, 0, 0, 0, 0, 0] + Array("a$\0".utf8)), version: v, .hostToAgent, .badIdent(.serviceConnect))
        expect(raw(0x202, [0, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 65, count: 33)), version: v, .hostToAgent,
               .badLength(.serviceConnect, len: 41, rule: "more than 8 and at most 40"))
        XCTAssertEqual(try MessageRules.decode(raw(0x203, field("9", 32)), version: v, direction: .hostToAgent), .serviceRefused(ServiceParams(ident: "9")))
        expect(raw(0x203, field("9", 31)), version: v, .hostToAgent, .badLength(.serviceRefused, len: 31, rule: "exactly 32"))
        expect(raw(0x203, [UInt8](repeating: 65, count: 32)), version: v, .hostToAgent, .notTerminated(.serviceRefused, field: "ident"))
        var padded = field("9", 32); padded[10] = 66
        expect(raw(0x203, padded), version: v, .hostToAgent, .badPadding(.serviceRefused, field: "ident"))
        expect(raw(0x203, field("a/b", 32)), version: v, .hostToAgent, .badIdent(.serviceRefused))
    }

    func testTriggers() throws {
        let t3 = TriggerService3(targetDomain: "work", ident: "1 a", serviceName: "qubes.Filecopy+x")
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.triggerService3(t3).encoded, version: 3, direction: .agentToHost), .triggerService3(t3))
        let t4 = TriggerService4(sourceDomain: "a", targetDomain: "@dispvm:dvm", ident: "2", serviceName: "qubes.Get")
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.triggerService4(t4).encoded, version: 4, direction: .agentToHost), .triggerService4(t4))
        // QSB-089: len == sizeof(params) is refused (a name needs its NUL).
        expect(raw(0x212, field("w", 64) + field("1", 32)), version: v, .agentToHost,
               .badLength(.triggerService3, len: 96, rule: "more than 96 and at most \(96 + 65000)"))
        expect(hdr(0x212, 96 + 65001).bytes, version: v, .agentToHost,
               .badLength(.triggerService3, len: 96 + 65001, rule: "more than 96 and at most \(96 + 65000)"))
        XCTAssertNoThrow(try MessageRules.admit(hdr(0x212, 96 + 65000), version: v, direction: .agentToHost))
        expect(raw(0x213, field("a", 64) + field("b", 64) + field("1", 32)), version: v, .agentToHost,
               .badLength(.triggerService4, len: 160, rule: "more than 160 and at most \(160 + 65000)"))
        expect(QrexecMessage.triggerService4(t4).encoded, version: 3, .agentToHost, .typeNotInVersion(.triggerService4, version: 3))
        let base = field("w", 64) + field("1", 32)
        expect(raw(0x212, base + Array("svc".utf8)), version: v, .agentToHost, .notTerminated(.triggerService3, field: "service_name"))
        expect(raw(0x212, base + Array("s\0v\0".utf8)), version: v, .agentToHost, .interiorNUL(.triggerService3, field: "service_name"))
        expect(raw(0x212, base + [0]), version: v, .agentToHost, .refusedName(field: "service name", reason: "empty"))
        expect(raw(0x212, base + Array("+a\0".utf8)), version: v, .agentToHost, .refusedName(field: "service name", reason: "starts with '+'"))
        expect(raw(0x212, [UInt8](repeating: 97, count: 64) + field("1", 32) + [65, 0]), version: v, .agentToHost,
               .notTerminated(.triggerService3, field: "target_domain"))
        expect(raw(0x212, field("w", 64) + field("1;", 32) + [65, 0]), version: v, .agentToHost, .badIdent(.triggerService3))
        // Sanitising: bytes outside the sets become '_'.
        let m = try MessageRules.decode(raw(0x212, field("wo rk$", 64) + field("1", 32) + Array("q.S/$x+a b\0".utf8)), version: v, direction: .agentToHost)
        XCTAssertEqual(m, .triggerService3(TriggerService3(targetDomain: "wo_rk_", ident: "1", serviceName: "q.S__x+a_b")))
        // Host->agent never carries triggers.
        expect(QrexecMessage.triggerService3(t3).encoded, version: v, .hostToAgent, .unexpectedType(.triggerService3, direction: .hostToAgent))
    }

    func testConnectionTerminatedAndData() throws {
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.connectionTerminated(connectDomain: 3, connectPort: 514).encoded, version: v, direction: .agentToHost),
                       .connectionTerminated(connectDomain: 3, connectPort: 514))
        expect(raw(0x211, [0, 0, 0, 0]), version: v, .agentToHost, .badLength(.connectionTerminated, len: 4, rule: "exactly 8"))
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.stdout([1, 2]).encoded, version: v, direction: .serviceToClient), .stdout([1, 2]))
        XCTAssertEqual(try MessageRules.decode(QrexecMessage.exitCode(-3).encoded, version: v, direction: .serviceToClient), .exitCode(-3))
        expect(hdr(0x191, 65537).bytes, version: v, .serviceToClient, .badLength(.dataStdout, len: 65537, rule: "at most 65536"))
        expect(raw(0x193, [0, 0]), version: v, .serviceToClient, .badLength(.dataExitCode, len: 2, rule: "exactly 4"))
        expect(QrexecMessage.stdin([1]).encoded, version: v, .serviceToClient, .unexpectedType(.dataStdin, direction: .serviceToClient))
        expect(QrexecMessage.stdout([1]).encoded, version: v, .clientToService, .unexpectedType(.dataStdout, direction: .clientToService))
        expect(QrexecMessage.stdout([1]).encoded, version: v, .agentToHost, .unexpectedType(.dataStdout, direction: .agentToHost))
        expect([1, 2, 3], version: v, .agentToHost, .truncated(expected: 8, got: 3))
    }

    func testDataStreamSemantics() {
        XCTAssertEqual(DataStream.event(.stdout([]), incoming: .serviceToClient), .eof)
        XCTAssertEqual(DataStream.event(.stdout([7]), incoming: .serviceToClient), .data([7]))
        XCTAssertEqual(DataStream.event(.stderr([7]), incoming: .serviceToClient), .stderr([7]))
        XCTAssertEqual(DataStream.event(.exitCode(4), incoming: .serviceToClient), .exit(4))
        XCTAssertEqual(DataStream.event(.stdin([]), incoming: .clientToService), .eof)
        XCTAssertEqual(DataStream.event(.stdin([1]), incoming: .clientToService), .data([1]))
        // QSB-087: the caller's STDERR and EXIT_CODE mean nothing.
        XCTAssertEqual(DataStream.event(.stderr([1]), incoming: .clientToService), .ignored)
        XCTAssertEqual(DataStream.event(.exitCode(1), incoming: .clientToService), .ignored)
        XCTAssertEqual(DataStream.exitStatus(waitStatus: 3 << 8), 3)
        XCTAssertEqual(DataStream.exitStatus(waitStatus: 9), 137)
    }

    func testNames() throws {
        XCTAssertEqual(try Names.sanitizeServiceName(Array("qubes.Get Date+a/b".utf8)), "qubes.Get_Date+a_b")
        XCTAssertThrowsError(try Names.sanitizeServiceName([UInt8]()))
        XCTAssertThrowsError(try Names.sanitizeServiceName(Array("+x".utf8)))
        XCTAssertNoThrow(try Names.sanitizeServiceName([UInt8](repeating: 97, count: 65000)))
        XCTAssertThrowsError(try Names.sanitizeServiceName([UInt8](repeating: 97, count: 65001)))
        XCTAssertEqual(try Names.sanitizeDomainName(Array("@dispvm:work x/..".utf8)), "@dispvm:work_x_..")
        XCTAssertNoThrow(try Names.sanitizeDomainName([UInt8](repeating: 97, count: 63)))
        XCTAssertThrowsError(try Names.sanitizeDomainName([UInt8](repeating: 97, count: 64)))
        XCTAssertEqual(try Names.sanitizeDomainName([0xff, 0x41]), "_A")
        let (u, c) = try Names.splitUserCommand(Array("user:echo a:b".utf8))
        XCTAssertEqual(u, "user"); XCTAssertEqual(c, Array("echo a:b".utf8))
        for bad in ["nocolon", ":cmd", "user:", "-u:cmd", "us er:cmd", "u/x:cmd"] {
            XCTAssertThrowsError(try Names.splitUserCommand(Array(bad.utf8)), bad)
        }
    }
}
