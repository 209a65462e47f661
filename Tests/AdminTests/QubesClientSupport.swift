// Runs Qubes' own admin tools (qubes-core-admin-client, unmodified) against
// an in-process daemon's admin socket. scripts/qubes-client unpacks the
// client (idempotent); scripts/qubes-client.d/run-tool.py points it at the
// socket. As root, the tools run as nobody in admin_socket_group nogroup:
// a Qubes dom0's tools run as the desktop user, and as root qvm-clone looks
// for the `qubes` group to run qvm-appmenus as, which an Odyssey host lacks.
import Foundation
import XCTest

final class QubesClient {
    let harness: AdminHarness
    let clientDir: String
    let binDir: String
    private let python: String
    private let asNobody: Bool

    struct Run { var status: Int32; var out: String; var err: String }

    /// Skips (with the reason) where the client or Python cannot be had.
    init() throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no python3 in /usr/bin or /usr/local/bin: Qubes' admin client is Python")
        }
        self.python = python
        let setup = try Self.capture(["/bin/sh", Repo.root + "/scripts/qubes-client"])
        guard setup.status == 0 else { throw XCTSkip("Qubes' admin client unavailable: \(setup.err)") }
        clientDir = setup.out.trimmingCharacters(in: .whitespacesAndNewlines)
        asNobody = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && getgrnam("nogroup") != nil
        harness = try AdminHarness(config: asNobody ? "admin_socket_group = \"nogroup\"" : "")
        binDir = harness.dir + "/bin"
        try FileManager.default.createDirectory(atPath: binDir, withIntermediateDirectories: true)
        // The paths nobody walks to the socket and to the client.
        for d in [harness.dir, binDir] { chmod(d, 0o755) }
        setAppMenus(exitStatus: 0)
        try harness.startSocket()
    }

    /// qvm-clone runs Qubes' menu tool, qvm-appmenus, which is no part of
    /// Odyssey (it belongs to the Qubes desktop): a stand-in that exits with `status`.
    func setAppMenus(exitStatus status: Int) {
        let path = binDir + "/qvm-appmenus"
        FileManager.default.createFile(atPath: path, contents: Data("#!/bin/sh\nexit \(status)\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
    }

    /// One tool (a module of qubesadmin.tools: qvm_clone, qvm_prefs...) with its arguments.
    func run(_ tool: String, _ args: String...) throws -> Run {
        try Self.capture(command(tool, args))
    }

    /// Where run-tool.py records each call's bytes (nil: not recorded).
    var recordPath: String?

    func command(_ tool: String, _ args: [String]) -> [String] {
        let record = recordPath.map { ["--record", $0] } ?? []
        let base = [python, Repo.root + "/scripts/qubes-client.d/run-tool.py"] + record + [clientDir, harness.socket, tool] + args
        let env = ["/usr/bin/env", "-i", "PATH=\(binDir):/usr/bin:/bin", "HOME=/tmp", "EDITOR=false"]
        return asNobody ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + env + base : env + base
    }

    static func capture(_ argv: [String]) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let errPath = NSTemporaryDirectory() + "qubes-client-err-\(UUID().uuidString.prefix(8))"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: e)
    }
}
