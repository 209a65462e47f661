// A real odysseyd process (detached, as an admin starts it) with the real
// plugins, a busybox template, and `ody` to drive it: for tests where the
// daemon's own process must be observed (a signal that would kill it, a
// restart) rather than an in-process Daemon object.
import Foundation
import XCTest

final class DaemonProcess {
    let dir: String
    let config: String
    let cgroupParent = "odyssey-dp-\(UUID().uuidString.prefix(6))"
    private(set) var pid: pid_t = 0
    var env: [String: String] { ["ODYSSEY_SOCKET": dir + "/state/admin.sock"] }

    /// Needs root (native domains); skips with the reason otherwise.
    /// `base`: where its directory goes (the Xen tier uses dom0's scratch disk).
    init(_ label: String, extraConfig: String = "", base: String = "/tmp") throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (native domains); CI runs as root") }
        dir = "\(base)/odyssey-\(label)-\(UUID().uuidString.prefix(6))"
        let plugins = dir + "/plugins"
        try Build.stagePlugins(into: plugins)
        config = dir + "/odyssey.toml"
        try """
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/state/admin.sock"
        plugin_dirs = ["\(plugins)"]
        policy_dirs = ["\(Build.root)/config/policy.d"]
        rpc_dirs = ["\(Build.root)/config/qubes-rpc"]
        agent_path = "\(plugins)/odyssey-agent"
        \(extraConfig)
        [vmm.native]
        state_dir = "\(dir)/native"
        cgroup_parent = "\(cgroupParent)"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Runs `exe` with `args`; returns (status, stdout+stderr).
    @discardableResult
    func sh(_ exe: String, _ args: [String], stdin: Data? = nil) throws -> (Int32, String) {
        let p = Process(); p.executableURL = URL(fileURLWithPath: exe); p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let o = Pipe(); p.standardOutput = o; p.standardError = o
        let i = Pipe(); p.standardInput = i
        try p.run()
        if let stdin { i.fileHandleForWriting.write(stdin) }
        try? i.fileHandleForWriting.close()
        let d = o.fileHandleForReading.readDataToEndOfFile(); p.waitUntilExit()
        return (p.terminationStatus, String(decoding: d, as: UTF8.self))
    }

    @discardableResult
    func ody(_ args: [String]) throws -> (Int32, String) { try sh(Build.dir + "/ody", args) }

    /// Starts the daemon detached (as `odysseyd --config F`); returns its pid.
    @discardableResult
    func start() throws -> pid_t {
        let r = try sh(Build.dir + "/odysseyd", ["--config", config])
        XCTAssertEqual(r.0, 0, r.1)
        pid = pid_t(String(decoding: FileManager.default.contents(atPath: dir + "/state/odysseyd.pid") ?? Data(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        return pid
    }

    /// True while the daemon's process exists and is not a zombie.
    var alive: Bool {
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
    }

    var log: String { (try? String(contentsOfFile: dir + "/state/odysseyd.log", encoding: .utf8)) ?? "" }

    /// A busybox template named `tpl` (root and user in /etc/passwd).
    func makeBusyboxTemplate() throws {
        let rootfs = try Build.busyboxRootfs(at: dir + "/rootfs")
        let r = try ody(["template", "create", "tpl", "--from-rootfs", rootfs])
        XCTAssertEqual(r.0, 0, r.1)
    }

    /// The daemon started, a busybox template, and `name` created and running.
    func startWithRunningDomain(_ name: String = "work") throws {
        try start()
        try makeBusyboxTemplate()
        XCTAssertEqual(try ody(["create", name, "--class", "AppVM", "--template", "tpl", "--label", "blue"]).0, 0)
        let started = try ody(["start", name])
        XCTAssertEqual(started.0, 0, started.1)
    }

    /// Stops every domain and the daemon, and removes the directory.
    func tearDown() {
        if alive {
            struct Row: Decodable { var name: String; var state: String }
            let listed = (try? ody(["ls", "--json"]))?.1 ?? "[]"
            for r in (try? JSONDecoder().decode([Row].self, from: Data(listed.utf8))) ?? [] where r.state != "Halted" && r.name != "dom0" {
                _ = try? ody(["kill", r.name])
            }
            kill(pid, SIGTERM)
            for _ in 0..<100 where alive { usleep(20_000) }
        }
        killLeftoverDomains()
        try? FileManager.default.removeItem(atPath: dir)
        for c in ["memory", "pids", "freezer", "cpu", "cpuacct"] { rmdir("/sys/fs/cgroup/\(c)/\(cgroupParent)") }
    }

    /// Domains outlive their daemon by design; a test whose daemon died
    /// must not leave them running: every process in our cgroup parent goes.
    private func killLeftoverDomains() {
        let base = "/sys/fs/cgroup/pids/\(cgroupParent)"
        let domains = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        for dom in domains where !dom.contains(".") {
            let freezer = "/sys/fs/cgroup/freezer/\(cgroupParent)/\(dom)/freezer.state"
            try? "THAWED".write(toFile: freezer, atomically: false, encoding: .utf8)
            for _ in 0..<50 {
                let procs = ((try? String(contentsOfFile: "\(base)/\(dom)/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
                if procs.isEmpty { break }
                for p in procs { if let pid = pid_t(p) { kill(pid, SIGKILL) } }
                usleep(20_000)
            }
            for c in ["memory", "pids", "freezer", "cpu", "cpuacct"] { rmdir("/sys/fs/cgroup/\(c)/\(cgroupParent)/\(dom)") }
        }
    }
}
