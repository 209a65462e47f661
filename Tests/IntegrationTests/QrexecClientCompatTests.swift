// Qubes' dom0 qrexec-client interface (what qvm-run and qubesadmin's
// run_service exec): the real ody binary called as `qrexec-client`, the
// daemon's run socket, a native domain's agent and the domain's
// qubes.VMShell service.
import Foundation
import XCTest
@testable import Host

final class QrexecClientCompatTests: XCTestCase {
    var h: Host!
    var client = ""

    override func setUpWithError() throws {
        h = try Host(topConfig: "domain_rpc_dir = \"\(Build.root)/config/domain-rpc\"")
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.start()
        client = h.dir + "/qrexec-client"
        try FileManager.default.createSymbolicLink(atPath: client, withDestinationPath: Build.dir + "/ody")
    }

    override func tearDown() { h?.shutdownAll(); h = nil }

    func qrexecClient(_ args: [String], stdin: String = "") throws -> (status: Int32, out: String, err: String) {
        try runCapturing([client] + args, environment: ["ODYSSEY_SOCKET": h.dir + "/state/admin.sock", "PATH": "/usr/bin:/bin"], stdin: stdin)
    }

    /// What qvm-run -p sends: `qrexec-client -d VM DEFAULT:QUBESRPC qubes.VMShell+ dom0`, commands on stdin.
    func testQvmRunsShellServiceWithTheDefaultUser() throws {
        let r = try qrexecClient(["-d", "work", "DEFAULT:QUBESRPC qubes.VMShell+ dom0"],
                                 stdin: "id -un; echo out; echo err >&2; exit 3\n")
        XCTAssertEqual(r.status, 3, r.err)
        XCTAssertEqual(r.out, "user\nout\n")
        XCTAssertEqual(r.err, "err\n")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .running, "a halted domain is started, as qvm-run does")

        // An explicit user, and a plain command line (not a service).
        let root = try qrexecClient(["-d", "work", "root:id -un"])
        XCTAssertEqual(root.out, "root\n")
        XCTAssertEqual(root.status, 0)
    }

    func testQubesOptions() throws {
        // -p: prefix data before stdin (qubesadmin's prefix_data).
        var r = try qrexecClient(["-d", "work", "-p", "echo prefixed;", "DEFAULT:QUBESRPC qubes.VMShell+ dom0"], stdin: " echo rest\n")
        XCTAssertEqual(r.out, "prefixed\nrest\n", r.err)

        // -t / -T: terminal escapes in the command's output become '_'.
        r = try qrexecClient(["-d", "work", "-t", "-T", "user:printf 'a\\033[31mb\\tc\\n'; printf 'e\\033x\\n' >&2"])
        XCTAssertEqual(r.out, "a_[31mb\tc\n")
        XCTAssertEqual(r.err, "e_x\n")
        r = try qrexecClient(["-d", "work", "user:printf 'a\\033b'"])
        XCTAssertEqual(Array(r.out.utf8), [0x61, 0x1b, 0x62], "without -t bytes pass unchanged")

        // -l: a local command wired to the remote one's stdin/stdout.
        let local = h.dir + "/local-out"
        r = try qrexecClient(["-d", "work", "-l", "echo from-local; cat > \(local)", "user:read x; echo got $x"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try String(contentsOfFile: local, encoding: .utf8), "got from-local\n")

        // -e: returns once started; -E: exit 0 whatever the command's status.
        XCTAssertEqual(try qrexecClient(["-d", "work", "-e", "user:exit 9"]).status, 0)
        XCTAssertEqual(try qrexecClient(["-d", "work", "-E", "user:exit 9"]).status, 0)
        XCTAssertEqual(try qrexecClient(["-d", "work", "-w", "5", "user:exit 9"]).status, 9)
    }

    func testErrorsAreQubesExitStatuses() throws {
        var r = try qrexecClient(["-d", "nosuch", "DEFAULT:true"])
        XCTAssertEqual(r.status, 125)
        XCTAssertTrue(r.err.contains("nosuch"), r.err)
        r = try qrexecClient(["-d", "work", "DEFAULT:QUBESRPC no.SuchService+ dom0"])
        XCTAssertEqual(r.status, 127, r.err)
        r = try qrexecClient(["-d", "work", "-c", "1,a,2", "DEFAULT:true"])
        XCTAssertEqual(r.status, 125)
        XCTAssertTrue(r.err.contains("not supported"), r.err)
        r = try qrexecClient(["-d", "work", "no-user-part"])
        XCTAssertEqual(r.status, 125)
        XCTAssertTrue(r.err.contains("USER:COMMAND"), r.err)
        r = try qrexecClient(["-d", "work", "-e", "-l", "cat", "user:true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("only one of"), r.err)
        r = try qrexecClient(["--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.out.contains("-d DOMAIN"), r.out)
        r = try qrexecClient(["-x"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("unknown option -x"), r.err)
    }
}

/// `qvm-run` itself: Qubes' admin client, unmodified (scripts/qubes-client),
/// against the daemon's admin socket, reaching the domain through `ody`
/// called as qrexec-client.
final class QvmRunTests: XCTestCase {
    func testQubesQvmRunUnchanged() throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no python3: Qubes' admin client is Python")
        }
        let setup = try runCapturing(["/bin/sh", Build.root + "/scripts/qubes-client"])
        guard setup.status == 0 else { throw XCTSkip("Qubes' admin client unavailable: \(setup.err)") }
        let clientDir = setup.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let h = try Host(topConfig: "domain_rpc_dir = \"\(Build.root)/config/domain-rpc\"")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.start()
        let client = h.dir + "/qrexec-client"
        try FileManager.default.createSymbolicLink(atPath: client, withDestinationPath: Build.dir + "/ody")
        func qvmRun(_ args: String...) throws -> (status: Int32, out: String, err: String) {
            try runCapturing(["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", "ODYSSEY_QREXEC_CLIENT=\(client)",
                              "ODYSSEY_SOCKET=\(h.dir)/state/admin.sock",
                              python, Build.root + "/scripts/qubes-client.d/run-tool.py", clientDir, h.dir + "/state/admin.sock",
                              "qvm_run"] + args)
        }
        // Starts the halted domain, runs through qubes.VMShell, passes stdout and the status.
        var r = try qvmRun("-p", "work", "echo hello from $(id -un); exit 3")
        XCTAssertEqual(r.out, "hello from user\n", r.err)
        XCTAssertEqual(r.status, 3, r.err)
        r = try qvmRun("-p", "-u", "root", "work", "id -un")
        XCTAssertEqual(r.out, "root\n", r.err)
        XCTAssertEqual(r.status, 0, r.err)
        // Without --pass-io it returns once the command runs.
        r = try qvmRun("work", "true")
        XCTAssertEqual(r.status, 0, r.err)
        // A domain that does not exist: the client's own error, not a traceback.
        r = try qvmRun("-p", "nosuch", "true")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(r.err.contains("Traceback"), r.err)
    }
}
