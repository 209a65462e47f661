// SplitGPGRefusalTests: what split GPG refuses, on both sides.
// - ody-gpg refuses every class of forbidden argument with one clear line
//   naming it and exit 2, and calls nothing (the loopback's call log stays
//   empty, the vault's gpg never runs).
// - qubes.Gpg in the vault refuses the same arguments when a client skips
//   those checks (a crafted stream), before consent and before gpg, and
//   refuses malformed streams, and more concurrent calls from one domain
//   than max_concurrent_calls.
import Foundation
import XCTest

final class SplitGPGRefusalTests: XCTestCase {
    override class func tearDown() {
        SplitGPG.stopAgent()
        super.tearDown()
    }

    /// (arguments, text the message must contain)
    static let refused: [([String], String)] = [
        (["--import"], "--import is refused: key management"),
        (["--edit-key", "t@example.org"], "--edit-key is refused: key management"),
        (["--gen-key"], "--gen-key is refused: key management"),
        (["--quick-gen-key", "X <x@example.org>"], "--quick-gen-key is refused: key management"),
        (["--delete-key", "t@example.org"], "--delete-key is refused: key management"),
        (["--delete-secret-keys", "t@example.org"], "--delete-secret-keys is refused: key management"),
        (["--sign-key", "t@example.org"], "--sign-key is refused: key management"),
        (["--export-secret-keys"], "--export-secret-keys is refused: key management"),
        (["--recv-keys", "0x1234"], "--recv-keys is refused"),
        (["--detach"], "--detach is refused: long options must be spelled in full (--detach-sign?)"),
        (["--clearsig"], "--clearsig is refused: long options must be spelled in full"),
        (["--arm", "-b"], "--arm is refused: long options must be spelled in full"),
        (["-b", "-o", "out.sig"], "-o out.sig is refused: output goes to stdout only"),
        (["-bo", "out.sig"], "-o out.sig is refused: output goes to stdout only"),
        (["--output", "out.sig", "-b"], "--output out.sig is refused: output goes to stdout only"),
        (["--output=out.sig", "-b"], "--output out.sig is refused: output goes to stdout only"),
        (["--detach-sign", "data.txt"], "argument 'data.txt' is refused: split GPG takes no file names"),
        (["-e", "-r", "t@example.org", "/etc/passwd"], "argument '/etc/passwd' is refused"),
        (["-b", "-", "extra"], "argument 'extra' is refused"),
        (["--homedir", "/tmp", "-b"], "--homedir is refused: not on split GPG's option allow-list"),
        (["--exec-path=/tmp", "-b"], "--exec-path is refused"),
        (["--photo-viewer", "/bin/sh", "-k"], "--photo-viewer is refused"),
        (["-i"], "-i is refused: not on split GPG's option allow-list"),
        (["-bx"], "-x is refused"),
        (["--armor=yes", "-b"], "--armor is refused with a value"),
        (["--list-options", "show-photos", "-k"], "--list-options show-photos is refused"),
        (["--verify-options", "auto-key-retrieve", "--verify"], "--verify-options auto-key-retrieve is refused"),
        (["--trust-model", "bogus", "-k"], "--trust-model bogus is refused"),
        (["--status-fd", "0", "-b"], "--status-fd 0 is refused"),
        (["--status-fd", "x", "-b"], "--status-fd x is refused"),
        (["--command-fd", "1", "-b"], "--command-fd 1 is refused"),
        (["--status-fd", "7", "-b"], "descriptor 7 is not open"),
        (["-k", "--detach-sign"], "conflicting commands"),
        (["-b", "--comment", "a\nb"], "contains a control character"),
        (["-r"], "-r needs a value"),
    ]

    func testRefusedArgumentsAreNamedAndNothingIsCalled() throws {
        let s = try SplitGPG.Setup()
        s.file("data.txt", Array("data\n".utf8))
        for (args, expected) in Self.refused {
            let r = try s.gpg(args, stdin: Array("data\n".utf8))
            let what = args.joined(separator: " ")
            XCTAssertEqual(r.status, 2, "\(what): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("ody-gpg: "), "\(what): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(what): expected \"\(expected)\" in: \(r.stderr)")
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(what): one line: \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty, what)
        }
        XCTAssertEqual(s.h.calls, [], "a refused command must not call the vault")
        XCTAssertEqual(s.gpgRuns, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.h.home("work") + "/out.sig"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.h.home("vault") + "/out.sig"))
    }

    func testArgumentsLongerThanTheCommandHeaderAreRefused() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["-b", "--comment", String(repeating: "c", count: 1100)], stdin: [1])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("at most 1024 bytes"), r.stderr)
        XCTAssertEqual(s.h.calls, [])
    }

    /// The vault, sent each refused argument list directly (no ody-gpg in
    /// between): an fd 2 message, exit frame 2, no consent asked, no gpg.
    func testVaultRevalidatesWhatTheClientSends() throws {
        let s = try SplitGPG.Setup()
        let crafted: [([String], String)] = [
            (["--import"], "--import is refused: key management"),
            (["--edit-key", "t@example.org"], "--edit-key is refused"),
            (["--detach"], "long options must be spelled in full"),
            (["-o", "/home/user/x", "-b"], "-o /home/user/x is refused"),
            (["-b", "/etc/passwd"], "argument '/etc/passwd' is refused"),
            (["--verify", "/etc/passwd", "-"], "the vault takes the signature only as /dev/fd/N"),
            (["--verify", "/dev/fd/1", "-"], "expected /dev/fd/N with 3 <= N"),
            (["--status-fd", "3", "--verify", "/dev/fd/3", "-"], "cannot be both read and written"),
            (["--verify", "/dev/fd/3", "/dev/fd/4"], "argument '/dev/fd/4' is refused"),
            (["--homedir=/tmp", "-b"], "--homedir is refused"),
            (["--status-fd", "0", "-b"], "--status-fd 0 is refused"),
            // Lasting changes to the vault's trust state, for every domain:
            (["--trusted-key=0123456789ABCDEF", "-k"], "--trusted-key is refused: key management"),
            (["--trust-model=tofu", "--verify"], "--trust-model tofu is refused"),
            (["--trust-model=auto", "--verify"], "--trust-model auto is refused"),
        ]
        for (args, expected) in crafted {
            let r = try s.h.runService("qubes.Gpg", source: "work", in: "vault",
                                       stdin: SplitGPG.stream(args, frames: [(0, Array("x".utf8)), (0, [])]), env: s.env)
            let reply = SplitGPG.reply(r.stdout)
            let what = args.joined(separator: " ")
            XCTAssertEqual(r.status, 2, what)
            XCTAssertEqual(reply.exitStatus, 2, what)
            XCTAssertTrue(reply.text.hasPrefix("split-gpg (vault): "), "\(what): \(reply.text)")
            XCTAssertTrue(reply.text.contains(expected), "\(what): expected \"\(expected)\" in: \(reply.text)")
            XCTAssertNil(reply.data[1], what)
        }
        XCTAssertEqual(s.consentCalls(), 0, "refused before asking the user")
        XCTAssertEqual(s.gpgRuns, 0, "gpg never ran")
    }

    func testVaultRefusesMalformedStreams() throws {
        let s = try SplitGPG.Setup()
        let good = SplitGPG.stream(["-b"], frames: [])
        let cases: [(String, [UInt8], String)] = [
            ("header too long", SplitGPG.le32(5000) + [UInt8](repeating: 45, count: 5000), "the command header is too long"),
            ("argument not NUL-terminated", SplitGPG.le32(3) + Array("-bx".utf8), "the command header is malformed"),
            ("cut header", SplitGPG.le32(10) + Array("-b".utf8), "the command header is cut short"),
        ]
        for (what, bytes, expected) in cases {
            let r = try s.h.runService("qubes.Gpg", source: "work", in: "vault", stdin: bytes, env: s.env)
            XCTAssertEqual(r.status, 2, what)
            XCTAssertTrue(SplitGPG.reply(r.stdout).text.contains(expected), "\(what): \(SplitGPG.reply(r.stdout).text)")
        }
        XCTAssertEqual(s.gpgRuns, 0)

        // Frames the arguments do not allow stop the call (gpg is killed, no exit frame).
        let frameCases: [(String, [UInt8], String)] = [
            ("frame for an undeclared descriptor", good + SplitGPG.le32(5) + SplitGPG.le32(1) + [7], "descriptor 5"),
            ("frame too large", good + SplitGPG.le32(0) + SplitGPG.le32(70_000) + [UInt8](repeating: 0, count: 70_000), "70000 bytes"),
            ("stream ends inside a frame", good + SplitGPG.le32(0) + SplitGPG.le32(10) + [1, 2], "ended inside a frame"),
            ("data after EOF", good + SplitGPG.le32(0) + SplitGPG.le32(0) + SplitGPG.le32(0) + SplitGPG.le32(1) + [1], "descriptor 0"),
        ]
        for (what, bytes, expected) in frameCases {
            let r = try s.h.runService("qubes.Gpg", source: "work", in: "vault", stdin: bytes, env: s.env)
            XCTAssertEqual(r.status, 1, what)
            XCTAssertTrue(r.stderr.contains("protocol error") && r.stderr.contains(expected), "\(what): \(r.stderr)")
            XCTAssertNil(SplitGPG.reply(r.stdout).exitStatus, what)
        }
    }
    /// A domain cannot hold more than max_concurrent_calls calls open in the
    /// vault (each a gpg process and buffers there); the slot comes back when
    /// the call ends, and other domains have their own.
    func testConcurrentCallsFromOneDomainAreCapped() throws {
        let s = try SplitGPG.Setup(config: ["max_concurrent_calls": "1"])
        let data = Array("held\n".utf8)
        let held = try s.h.startService("qubes.Gpg", source: "work", in: "vault", env: s.env)
        held.write(SplitGPG.stream(["-b"], frames: [(0, data)]))   // stdin not ended: the call stays open
        for _ in 0..<1000 where s.gpgRuns == 0 { usleep(10_000) }
        XCTAssertEqual(s.gpgRuns, 1, "the held call runs gpg")

        let r = try s.gpg(["-b"], stdin: data)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("split-gpg: 1 calls from work are already running (max_concurrent_calls); refused"), r.stderr)
        XCTAssertEqual(s.gpgRuns, 1, "gpg did not run for the refused call")
        XCTAssertEqual(try s.gpg(["-b"], stdin: data, in: "personal").status, 0, "another domain is not held up")

        let done = held.finish(SplitGPG.le32(0) + SplitGPG.le32(0))   // stdin's EOF frame
        XCTAssertEqual(done.status, 0, done.stderr)
        XCTAssertEqual(SplitGPG.reply(done.stdout).exitStatus, 0)
        let again = try s.gpg(["-b"], stdin: data)
        XCTAssertEqual(again.status, 0, again.stderr)
    }
}
