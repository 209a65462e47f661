// An in-process odysseyd with the real plugins (native, socket vchan), a real
// domain store in a temp state dir, and a busybox template: what the
// integration tests drive. Needs root (namespaces, cgroups, mounts).
import Domains
import Foundation
import Logging
import XCTest
@testable import Host

enum Build {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var dir: String { ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? root + "/.build/debug" }

    /// A tiny root: busybox with the applets the tests use, /etc/passwd and
    /// /etc/group with root and user.
    static func busyboxRootfs(at rootfs: String) throws -> String {
        for d in ["bin", "etc", "home/user", "root", "tmp", "proc", "dev", "rw", "run", "usr/bin", "var/tmp"] {
            try FileManager.default.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "cat", "echo", "ls", "id", "hostname", "ps", "mount", "kill", "sleep", "true", "false", "head", "dd", "ip", "wc", "touch", "rm", "mkdir", "env", "insmod", "grep"] {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nuser:x:1000:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        return rootfs
    }

    /// The built plugins, agent and jailer, staged as `make` stages them.
    static func stagePlugins(into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let stage = Process()
        stage.executableURL = URL(fileURLWithPath: root + "/scripts/stage-plugins")
        stage.arguments = [Build.dir, dir]
        stage.currentDirectoryURL = URL(fileURLWithPath: root)
        stage.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try stage.run(); stage.waitUntilExit()
    }
}

final class Host {
    let dir: String
    let daemon: Daemon
    let pluginDir: String

    /// Needs root; skips with the reason otherwise.
    /// `topConfig` goes before the tables (top-level keys), `extraConfig` after.
    init(_ label: String = "odyssey-it", topConfig: String = "", extraConfig: String = "") throws {
        guard geteuid() == 0 else { throw XCTSkip("integration tests need root (namespaces, cgroups, mounts); CI runs them as root") }
        dir = "/tmp/\(label)-\(UUID().uuidString.prefix(6))"
        pluginDir = dir + "/plugins"
        try Build.stagePlugins(into: pluginDir)
        for needed in ["libvmm-native.so", "libvchan-socket.so", "odyssey-agent", "odyssey-jailer"] {
            guard FileManager.default.fileExists(atPath: pluginDir + "/" + needed) else {
                throw XCTSkip("\(needed) is not built; run `make test`")
            }
        }
        let config = dir + "/odyssey.toml"
        try """
        \(topConfig)
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/state/admin.sock"
        plugin_dirs = ["\(pluginDir)"]
        policy_dirs = ["\(Build.root)/config/policy.d"]
        agent_path = "\(pluginDir)/odyssey-agent"
        [vmm]
        default = "native"
        [vmm.native]
        state_dir = "\(dir)/native"
        cgroup_parent = "odyssey-it-\(UUID().uuidString.prefix(6))"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        \(extraConfig)
        """.write(toFile: config, atomically: true, encoding: .utf8)
        daemon = try Daemon(configPath: config, logger: Logger(label: "it", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A tiny template: busybox, /etc/passwd with root and user.
    func makeBusyboxTemplate(_ name: String = "tpl") throws {
        let rootfs = try Build.busyboxRootfs(at: dir + "/rootfs-src")
        try mapped { () throws(DomainError) in
            _ = try TemplateBuilder(store: daemon.store, volumes: daemon.volumes).createFromRootfs(name, source: rootfs, label: "black")
        }
    }

    func create(_ name: String, template: String = "tpl", label: String = "blue", klass: DomainClass = .appVM) throws {
        try mapped { () throws(DomainError) in
            _ = try daemon.store.create(name, class: klass, label: label, template: klass.hasTemplate ? template : nil)
            try daemon.volumes.createVolumes(name, klass: klass, cloneRootFrom: klass == .standaloneVM ? template : nil)
        }
    }

    /// Runs `command` in `domain` through its agent; returns (exit, stdout, stderr).
    func run(_ domain: String, _ command: String, user: String = "root", stdin: String? = nil) throws -> (Int32, String, String) {
        let out = Pipe(), err = Pipe()
        var inFD: Int32? = nil
        let inPipe = Pipe()
        if let stdin {
            inFD = inPipe.fileHandleForReading.fileDescriptor
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
            try inPipe.fileHandleForWriting.close()
        }
        let code = try daemon.runtime.link(domain).run(user: user, command: command, stdin: inFD,
                                                       stdout: out.fileHandleForWriting.fileDescriptor,
                                                       stderr: err.fileHandleForWriting.fileDescriptor)
        try out.fileHandleForWriting.close(); try err.fileHandleForWriting.close()
        return (code, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func shutdownAll() {
        for n in daemon.runtime.runningNames { try? daemon.runtime.kill(n) }
        daemon.stop()
        daemon.backends.closeAll()
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }
}

/// Runs `argv` to its end with `stdin` fed in; (status, stdout, stderr).
/// `environment` nil: the test's own.
func runCapturing(_ argv: [String], environment: [String: String]? = nil, stdin: String = "") throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    if let environment { p.environment = environment }
    let i = Pipe(), o = Pipe(), e = Pipe()
    p.standardInput = i; p.standardOutput = o; p.standardError = e
    try p.run()
    i.fileHandleForWriting.write(Data(stdin.utf8))
    try i.fileHandleForWriting.close()
    // stderr is read on its own thread: a chatty command must not block on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let err = Box()
    let errDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async { err.data = e.fileHandleForReading.readDataToEndOfFile(); errDone.signal() }
    let out = o.fileHandleForReading.readDataToEndOfFile()
    errDone.wait()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err.data, as: UTF8.self))
}
