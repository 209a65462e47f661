// The local ody-call <-> agent protocol (LocalCall) and the QUBESRPC command
// line (ServiceCommand): every malformed input is a typed error.
import Qrexec
import XCTest

final class LocalCallTests: XCTestCase {
    func decodeRequest(_ bytes: [UInt8]) throws -> TriggerService3 {
        let h = MsgHeader(untrusted_bytes: bytes)
        let n = try LocalCall.admitRequest(h)
        XCTAssertEqual(n, bytes.count - MsgHeader.size)
        return try LocalCall.validateRequest(h, untrusted_body: Array(bytes[MsgHeader.size...]))
    }

    func decodeReply(_ bytes: [UInt8]) throws -> LocalCall.Reply {
        let h = MsgHeader(untrusted_bytes: bytes)
        let n = try LocalCall.admitReply(h)
        return try LocalCall.validateReply(h, untrusted_body: Array(bytes[MsgHeader.size..<(MsgHeader.size + n)]))
    }

    func testRequestRoundTripAndSanitising() throws {
        let t = try decodeRequest(try LocalCall.request(target: "vault", service: "my.Service+arg"))
        XCTAssertEqual(t, TriggerService3(targetDomain: "vault", ident: "", serviceName: "my.Service+arg"))
        // Bytes outside the allowed sets become '_' before the request leaves.
        let s = try decodeRequest(try LocalCall.request(target: "@dispvm:a b", service: "x.Y+$(id)/../é"))
        XCTAssertEqual(s.targetDomain, "@dispvm:a_b")
        XCTAssertEqual(s.serviceName, "x.Y+__id__..___")
        XCTAssertThrowsError(try LocalCall.request(target: "", service: "x")) {
            XCTAssertEqual($0 as? QrexecError, .refusedName(field: "target", reason: "empty (use @default)"))
        }
        XCTAssertThrowsError(try LocalCall.request(target: "vault", service: "+x"))
        XCTAssertThrowsError(try LocalCall.request(target: "vault", service: ""))
        XCTAssertThrowsError(try LocalCall.request(target: String(repeating: "a", count: 64), service: "x"))
        XCTAssertThrowsError(try LocalCall.request(target: "vault", service: String(repeating: "a", count: 65001)))
    }

    func testMalformedRequests() throws {
        // Only TRIGGER_SERVICE3, with the host's length rules (QSB-089: > 96).
        XCTAssertThrowsError(try LocalCall.admitRequest(MsgHeader(type: .triggerService4, len: 200)))
        XCTAssertThrowsError(try LocalCall.admitRequest(MsgHeader(type: .execCmdline, len: 20)))
        XCTAssertThrowsError(try LocalCall.admitRequest(MsgHeader(type: .unknown(7), len: 20)))
        XCTAssertThrowsError(try LocalCall.admitRequest(MsgHeader(type: .triggerService3, len: 96)))
        XCTAssertThrowsError(try LocalCall.admitRequest(MsgHeader(type: .triggerService3, len: 96 + 65001)))
        XCTAssertEqual(try LocalCall.admitRequest(MsgHeader(type: .triggerService3, len: 97)), 97)
        let good = Array(try LocalCall.request(target: "vault", service: "a.B")[MsgHeader.size...])
        let h = MsgHeader(type: .triggerService3, len: UInt32(good.count))
        // Service name without its NUL, with an interior NUL, ident with bad bytes.
        var noNUL = good; noNUL[noNUL.count - 1] = UInt8(ascii: "x")
        XCTAssertThrowsError(try LocalCall.validateRequest(h, untrusted_body: noNUL)) {
            XCTAssertEqual($0 as? QrexecError, .notTerminated(.triggerService3, field: "service_name"))
        }
        var interior = good; interior[97] = 0
        XCTAssertThrowsError(try LocalCall.validateRequest(h, untrusted_body: interior)) {
            XCTAssertEqual($0 as? QrexecError, .interiorNUL(.triggerService3, field: "service_name"))
        }
        var ident = good; ident[64] = UInt8(ascii: "/")
        XCTAssertThrowsError(try LocalCall.validateRequest(h, untrusted_body: ident)) {
            XCTAssertEqual($0 as? QrexecError, .badIdent(.triggerService3))
        }
        var target = good; for i in 0..<64 { target[i] = UInt8(ascii: "a") }
        XCTAssertThrowsError(try LocalCall.validateRequest(h, untrusted_body: target)) {
            XCTAssertEqual($0 as? QrexecError, .notTerminated(.triggerService3, field: "target_domain"))
        }
        XCTAssertThrowsError(try LocalCall.validateRequest(h, untrusted_body: Array(good.dropLast())))
    }

    func testReplies() throws {
        let p = ExecParams(connectDomain: 2, connectPort: 513, cmdline: "call-7")
        XCTAssertEqual(try decodeReply(LocalCall.encode(.connect(p))), .connect(p))
        XCTAssertEqual(try decodeReply(LocalCall.encode(.refused(ident: "call-8"))), .refused(ident: "call-8"))
        XCTAssertEqual(try decodeReply(LocalCall.encode(.failed("no host"))), .failed("no host"))
        // A reason is shown on a terminal: no escape sequences get through.
        XCTAssertEqual(try decodeReply(raw(0x192, Array("a\u{1b}[31mb\nc".utf8))), .failed("a?[31mb?c"))
        XCTAssertEqual(LocalCall.encode(.failed(String(repeating: "x", count: 10_000))).count, MsgHeader.size + LocalCall.maxReason)
    }

    func testMalformedReplies() {
        func bad(_ bytes: [UInt8], line: UInt = #line) {
            XCTAssertThrowsError(try decodeReply(bytes), line: line)
        }
        bad(raw(0x200, ExecParams(connectDomain: 0, connectPort: 1, cmdline: "x").body))   // EXEC_CMDLINE
        bad(raw(0x193, [0, 0, 0, 0]))                                                       // EXIT_CODE
        bad(raw(0x300, [3, 0, 0, 0]))                                                       // HELLO
        bad(raw(0x192, []))                                                                 // empty reason
        XCTAssertThrowsError(try LocalCall.admitReply(MsgHeader(type: .dataStderr, len: UInt32(LocalCall.maxReason + 1))))
        bad(raw(0x202, [2, 0, 0, 0, 1, 2, 0, 0] + Array("call/1".utf8) + [0]))              // ident charset
        bad(raw(0x202, [2, 0, 0, 0, 1, 2, 0, 0] + Array("call-1".utf8)))                    // not terminated
        bad(raw(0x202, [2, 0, 0, 0, 1, 2, 0, 0] + Array(repeating: UInt8(ascii: "a"), count: 40) + [0]))   // too long
        bad(raw(0x203, field("call-1", 31)))                                                // wrong length
        var padded = field("call-1", 32); padded[20] = 1
        bad(raw(0x203, padded))                                                             // garbage after the NUL
    }
}

final class ServiceCommandTests: XCTestCase {
    func parse(_ s: String) throws -> ServiceCommand { try ServiceCommand.parse(Array(s.utf8)) }

    func testParse() throws {
        let c = try parse("QUBESRPC my.Service+arg work")
        XCTAssertEqual(c.fullName, "my.Service+arg")
        XCTAssertEqual(c.service, "my.Service")
        XCTAssertEqual(c.argument, "arg")
        XCTAssertEqual(c.source, "work")
        XCTAssertNil(c.requestedTarget)
        XCTAssertEqual(c.lookupNames, ["my.Service+arg", "my.Service"])
        XCTAssertEqual(c.socketDescriptor, Array("my.Service+arg work".utf8) + [0])
        XCTAssertEqual(c.commandLine, "QUBESRPC my.Service+arg work")

        let n = try parse("QUBESRPC my.Service work")
        XCTAssertNil(n.argument)
        XCTAssertEqual(n.lookupNames, ["my.Service"])
        let e = try parse("QUBESRPC my.Service+ work")
        XCTAssertEqual(e.argument, "")
        XCTAssertEqual(e.lookupNames, ["my.Service+", "my.Service"])
        // Only the first '+' separates.
        XCTAssertEqual(try parse("QUBESRPC a+b+c work").argument, "b+c")

        let t = try parse("QUBESRPC a.B+x work name vault")
        XCTAssertEqual(t.requestedTarget?.type, "name")
        XCTAssertEqual(t.requestedTarget?.target, "vault")
        let k = try parse("QUBESRPC a.B+x work keyword @default")
        XCTAssertEqual(k.requestedTarget?.target, "default")
        XCTAssertEqual(k.commandLine, "QUBESRPC a.B+x work keyword default")
    }

    func testLongNamesFallBackToService() throws {
        let arg = String(repeating: "a", count: 250)
        XCTAssertEqual(try parse("QUBESRPC svc+\(arg) work").lookupNames, ["svc+\(arg)", "svc"])
        let longer = String(repeating: "a", count: 260)
        XCTAssertEqual(try parse("QUBESRPC svc+\(longer) work").lookupNames, ["svc"])
        XCTAssertThrowsError(try parse("QUBESRPC \(String(repeating: "s", count: 256)) work"))
        XCTAssertNoThrow(try parse("QUBESRPC \(String(repeating: "s", count: 255)) work"))
    }

    func testMalformed() {
        for s in ["QUBESRPC", "QUBESRPC a.B", "QUBESRPC a.B work extra", "QUBESRPC a.B work name", "QUBESRPC  work",
                  "QUBESRPC a.B  ", "QUBESRPC +arg work", "QUBESRPC .+x work", "QUBESRPC .. work", "QUBESRPC a.B work other x",
                  "QUBESRPC a.B work name ", "qubesrpc a.B work", "echo hi", "QUBESRPC a.B \(String(repeating: "w", count: 64))"] {
            XCTAssertThrowsError(try parse(s), s)
        }
        // Bytes a shell would act on are replaced, never interpreted.
        XCTAssertEqual(try parse("QUBESRPC a.B+$(id);`x` w$rk").fullName, "a.B+__id___x_")
        XCTAssertEqual(try parse("QUBESRPC a.B w$rk").source, "w_rk")
    }

    /// The caller's uuid rides at the end of the command line (issue 11: a
    /// service such as split-GPG's consent must tell a domain from a later
    /// one of the same name); only the canonical lower-case spelling passes.
    func testSourceUUID() throws {
        let u = "0f1e2d3c-4b5a-4697-8877-665544332211"
        let c = try parse("QUBESRPC a.B+x work uuid:\(u)")
        XCTAssertEqual(c.source, "work")
        XCTAssertEqual(c.sourceUUID, u)
        XCTAssertEqual(c.commandLine, "QUBESRPC a.B+x work uuid:\(u)")
        XCTAssertEqual(c.environment(agentPID: 1),
                       ["QREXEC_REMOTE_DOMAIN=work", "QREXEC_SERVICE_FULL_NAME=a.B+x", "QREXEC_REMOTE_DOMAIN_UUID=\(u)",
                        "QREXEC_SERVICE_ARGUMENT=x", "QREXEC_AGENT_PID=1"])
        let t = try parse("QUBESRPC a.B work name vault uuid:\(u)")
        XCTAssertEqual(t.requestedTarget?.target, "vault")
        XCTAssertEqual(t.sourceUUID, u)
        XCTAssertNil(try parse("QUBESRPC a.B work").sourceUUID)
        for bad in ["uuid:\(u.uppercased())", "uuid:\(u.dropLast())", "uuid:\(u)0", "uuid:", "uuid:\(u) x",
                    "uuid:0f1e2d3c_4b5a-4697-8877-665544332211", "name vault uuid:\(u) x"] {
            XCTAssertThrowsError(try parse("QUBESRPC a.B work \(bad)"), bad)
        }
    }

    func testEnvironment() throws {
        XCTAssertEqual(try parse("QUBESRPC a.B+-rf work").environment(agentPID: 42),
                       ["QREXEC_REMOTE_DOMAIN=work", "QREXEC_SERVICE_FULL_NAME=a.B+-rf", "QREXEC_SERVICE_ARGUMENT=-rf", "QREXEC_AGENT_PID=42"])
        XCTAssertEqual(try parse("QUBESRPC a.B+ work").environment(agentPID: 1),
                       ["QREXEC_REMOTE_DOMAIN=work", "QREXEC_SERVICE_FULL_NAME=a.B+", "QREXEC_AGENT_PID=1"])
        XCTAssertEqual(try parse("QUBESRPC a.B work name dom0").environment(agentPID: 1),
                       ["QREXEC_REMOTE_DOMAIN=work", "QREXEC_SERVICE_FULL_NAME=a.B", "QREXEC_REQUESTED_TARGET_TYPE=name",
                        "QREXEC_REQUESTED_TARGET=dom0", "QREXEC_AGENT_PID=1"])
        XCTAssertEqual(try parse("QUBESRPC a.B work keyword @adminvm").environment(agentPID: 1),
                       ["QREXEC_REMOTE_DOMAIN=work", "QREXEC_SERVICE_FULL_NAME=a.B", "QREXEC_REQUESTED_TARGET_TYPE=keyword",
                        "QREXEC_REQUESTED_TARGET_KEYWORD=adminvm", "QREXEC_AGENT_PID=1"])
    }
}
