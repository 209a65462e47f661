// The broker inside a real in-process odysseyd with native domains (needs
// root: namespaces, cgroups, mounts; skipped otherwise): ody-call in one
// domain reaches a service in another, a dom0 service, and a disposable
// that is gone afterwards. (Setup as in Tests/IntegrationTests/Harness.swift.)
import Domains
import Foundation
import Logging
import XCTest
@testable import Host

final class NativeBrokerTests: XCTestCase {
    func testCallsBetweenNativeDomains() throws {
        guard geteuid() == 0 else { throw XCTSkip("native domains need root (namespaces, cgroups, mounts); CI runs this as root") }
        let fm = FileManager.default
        let dir = "/tmp/obn-" + String(UUID().uuidString.prefix(6))
        defer { try? fm.removeItem(atPath: dir) }
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        let stage = Process()
        stage.executableURL = URL(fileURLWithPath: BrokerBuild.repoRoot + "/scripts/stage-plugins")
        stage.arguments = [BrokerBuild.dir, plugins]
        stage.currentDirectoryURL = URL(fileURLWithPath: BrokerBuild.repoRoot)
        stage.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try stage.run(); stage.waitUntilExit()
        for needed in ["libvmm-native.so", "libvchan-socket.so", "odyssey-agent", "odyssey-jailer", "ody-call"]
        where !fm.fileExists(atPath: plugins + "/" + needed) { throw XCTSkip("\(needed) is not built") }
        try fm.createDirectory(atPath: dir + "/policy", withIntermediateDirectories: true)
        try """
        test.Hello    *  @anyvm  @anyvm   allow user=root
        test.Hello    *  @anyvm  @dispvm  allow user=root
        test.Uuid     *  @anyvm  @anyvm   allow
        qubes.GetDate *  @anyvm  @anyvm   allow target=dom0
        """.write(toFile: dir + "/policy/50-test.policy", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: dir + "/qubes-rpc", withIntermediateDirectories: true)
        try fm.copyItem(atPath: BrokerBuild.repoRoot + "/config/qubes-rpc/qubes.GetDate", toPath: dir + "/qubes-rpc/qubes.GetDate")
        try """
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/state/admin.sock"
        plugin_dirs = ["\(plugins)"]
        policy_dirs = ["\(dir)/policy"]
        agent_path = "\(plugins)/odyssey-agent"
        [vmm]
        default = "native"
        [vmm.native]
        state_dir = "\(dir)/native"
        cgroup_parent = "odyssey-bt-\(UUID().uuidString.prefix(6))"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        """.write(toFile: dir + "/odyssey.toml", atomically: true, encoding: .utf8)
        let daemon = try Daemon(configPath: dir + "/odyssey.toml", logger: Logger(label: "bt", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer {
            daemon.broker.disposables.shutdown()
            for n in daemon.runtime.runningNames { try? daemon.runtime.kill(n) }
            daemon.stop()
        }
        // A busybox template with one service.
        let rootfs = dir + "/rootfs"
        for d in ["bin", "etc/qubes-rpc", "home/user", "root", "tmp", "proc", "dev", "rw", "run"] {
            try fm.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for a in ["sh", "cat", "echo", "true", "sleep", "hostname", "date"] {
            try fm.createSymbolicLink(atPath: rootfs + "/bin/" + a, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nuser:x:1000:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho \"$(hostname) serves $QREXEC_REMOTE_DOMAIN\"\n".write(toFile: rootfs + "/etc/qubes-rpc/test.Hello", atomically: true, encoding: .utf8)
        chmod(rootfs + "/etc/qubes-rpc/test.Hello", 0o755)
        // The caller's uuid reaches the service (split-GPG keys consent by it).
        try "#!/bin/sh\necho \"$QREXEC_REMOTE_DOMAIN_UUID\"\n".write(toFile: rootfs + "/etc/qubes-rpc/test.Uuid", atomically: true, encoding: .utf8)
        chmod(rootfs + "/etc/qubes-rpc/test.Uuid", 0o755)
        try mapped { () throws(DomainError) in
            _ = try TemplateBuilder(store: daemon.store, volumes: daemon.volumes).createFromRootfs("tpl", source: rootfs, label: "black")
            for n in ["work", "vault", "dvm"] {
                try daemon.store.create(n, class: .appVM, label: "blue", template: "tpl")
                try daemon.volumes.createVolumes(n, klass: .appVM)
            }
            try daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
        }
        try daemon.runtime.start("work")
        func inWork(_ command: String) throws -> (Int32, String) {
            let out = Pipe()
            let null = open("/dev/null", O_RDWR)
            defer { close(null) }
            let code = try daemon.runtime.link("work").run(user: "root", command: command, stdin: nil,
                                                           stdout: out.fileHandleForWriting.fileDescriptor, stderr: null)
            try out.fileHandleForWriting.close()
            return (code, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        var r = try inWork("ody-call vault test.Hello")
        XCTAssertEqual(r.0, 0)
        XCTAssertEqual(r.1, "vault serves work\n")
        XCTAssertEqual(daemon.runtime.powerState("vault"), .running, "started by the call")
        XCTAssertEqual(try inWork("ody-call vault test.Nope").0, 126)
        r = try inWork("ody-call vault test.Uuid")
        XCTAssertEqual(r.0, 0)
        XCTAssertEqual(r.1, try daemon.store.domain("work").uuid.text + "\n", "QREXEC_REMOTE_DOMAIN_UUID is the caller's")
        r = try inWork("ody-call vault qubes.GetDate")
        XCTAssertEqual(r.0, 0)
        XCTAssertTrue(r.1.hasPrefix("20"), r.1)
        r = try inWork("ody-call @dispvm:dvm test.Hello")
        XCTAssertEqual(r.0, 0)
        XCTAssertTrue(r.1.hasPrefix("disp") && r.1.hasSuffix(" serves work\n"), r.1)
        let disp = String(r.1.split(separator: " ")[0])
        let end = Date().addingTimeInterval(10)
        while Date() < end && daemon.store.snapshot().contains(disp) { usleep(20_000) }
        XCTAssertFalse(daemon.store.snapshot().contains(disp), "disposable removed")
        XCTAssertFalse(fm.fileExists(atPath: daemon.volumes.domainDir(disp)), "nothing left on disk")
        XCTAssertEqual(daemon.runtime.powerState(disp), .halted)
    }
}
