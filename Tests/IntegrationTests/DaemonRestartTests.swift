// odysseyd killed with SIGKILL while a domain runs: the domain keeps running,
// and the restarted daemon re-adopts it (its agent reconnects) without losing
// any committed change.
import Foundation
import XCTest
@testable import Host

final class DaemonRestartTests: XCTestCase {
    func testRunningDomainSurvivesDaemonSIGKILLAndIsReadopted() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (native domains); CI runs as root") }
        let dir = "/tmp/odyssey-restart-\(UUID().uuidString.prefix(6))"
        let plugins = dir + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stage = Process()
        stage.executableURL = URL(fileURLWithPath: Build.root + "/scripts/stage-plugins")
        stage.arguments = [Build.dir, plugins]
        stage.currentDirectoryURL = URL(fileURLWithPath: Build.root)
        try stage.run(); stage.waitUntilExit()
        let config = dir + "/odyssey.toml"
        try """
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/state/admin.sock"
        plugin_dirs = ["\(plugins)"]
        policy_dirs = ["\(Build.root)/config/policy.d"]
        agent_path = "\(plugins)/odyssey-agent"
        [vmm.native]
        state_dir = "\(dir)/native"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let env = ["ODYSSEY_SOCKET": dir + "/state/admin.sock"]
        let ody = Build.dir + "/ody"
        func sh(_ exe: String, _ args: [String]) throws -> (Int32, String) {
            let p = Process(); p.executableURL = URL(fileURLWithPath: exe); p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            let o = Pipe(); p.standardOutput = o; p.standardError = o
            try p.run(); let d = o.fileHandleForReading.readDataToEndOfFile(); p.waitUntilExit()
            return (p.terminationStatus, String(decoding: d, as: UTF8.self))
        }
        func startDaemon() throws -> pid_t {
            XCTAssertEqual(try sh(Build.dir + "/odysseyd", ["--config", config]).0, 0)
            return pid_t(String(decoding: FileManager.default.contents(atPath: dir + "/state/odysseyd.pid") ?? Data(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }

        // A busybox template and a running domain.
        let rootfs = dir + "/rootfs"
        for d in ["bin", "etc", "home", "root", "tmp", "proc", "dev", "rw", "run"] {
            try FileManager.default.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for a in ["sh", "cat", "echo", "sleep"] { try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + a, withDestinationPath: "busybox") }
        try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        var pid = try startDaemon()
        XCTAssertEqual(try sh(ody, ["template", "create", "tpl", "--from-rootfs", rootfs]).0, 0)
        XCTAssertEqual(try sh(ody, ["create", "work", "--class", "AppVM", "--template", "tpl", "--label", "blue"]).0, 0)
        let started = try sh(ody, ["start", "work"])
        XCTAssertEqual(started.0, 0, started.1)
        XCTAssertEqual(try sh(ody, ["run", "work", "-p", "--user", "root", "--", "echo before > /rw/mark"]).0, 0)

        kill(pid, SIGKILL)          // no clean stop at all
        usleep(200_000)
        pid = try startDaemon()
        defer {
            _ = try? sh(ody, ["kill", "work"])
            kill(pid, SIGTERM)
        }
        var r = (Int32(1), "")
        for _ in 0..<100 {          // the agent reconnects on its own
            r = try sh(ody, ["run", "work", "-p", "--", "cat /rw/mark"])
            if r.0 == 0 { break }
            usleep(50_000)
        }
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(r.1, "before\n", "same domain, same private volume, no restart")
        func state() throws -> String? {
            try sh(ody, ["ls"]).1.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.first == "work" }.map { String($0[1]) }
        }
        XCTAssertEqual(try state(), "Running")
        XCTAssertEqual(try sh(ody, ["shutdown", "--wait", "work"]).0, 0)
        XCTAssertEqual(try state(), "Halted")
    }
}
