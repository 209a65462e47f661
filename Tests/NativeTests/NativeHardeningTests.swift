// Issue 11's red-team findings against the native jail, replayed from inside
// real domains (as the domain's root and as its user) and checked from the
// host: each test failed on the code before the fix.
import Foundation
import PluginABI
import XCTest

final class NativeHardeningTests: NativeTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try AttackProbe.build(into: Fixtures.template + "/bin/attack")
    }

    /// Finding 6 and 8: 32-bit arguments are compared on their low 32 bits
    /// (TIOCSTI with bit 32 set used to pass), and io_uring, NETLINK_AUDIT,
    /// NETLINK_KOBJECT_UEVENT, AF_VSOCK and pidfd_getfd are refused; ordinary
    /// sockets still work; RLIMIT_NOFILE is bounded and cannot be raised.
    func testSeccompRefusesWhatTheRedTeamUsed() throws {
        let r = try runScript("sec", "/bin/attack syscalls > /rw/result 2>&1; cp /proc/self/mountinfo /rw/mountinfo")
        // Finding 8: the overlay's layers no longer name the host's run_dir.
        let mountinfo = Fixtures.read(privateDir("sec") + "/mountinfo") ?? ""
        XCTAssertTrue(mountinfo.contains("lowerdir=lower"), mountinfo)
        XCTAssertFalse(mountinfo.contains(runDir("sec")), "mountinfo shows the host's run_dir: \(mountinfo)")
        XCTAssertEqual(r["tiocsti"], "EPERM", "\(r)")
        XCTAssertEqual(r["tiocsti_high_bits"], "EPERM", "ioctl cmd must be compared on its low 32 bits: \(r)")
        XCTAssertEqual(r["tioclinux_high_bits"], "EPERM")
        for call in ["io_uring_setup", "io_uring_enter", "io_uring_register", "socket_netlink_audit",
                     "socket_netlink_audit_high_bits", "socket_netlink_uevent", "pidfd_getfd",
                     "process_vm_readv", "process_vm_writev"] {
            XCTAssertEqual(r[call], "EPERM", "\(call) from inside a domain: \(r)")
        }
        XCTAssertEqual(r["socket_vsock"], "EAFNOSUPPORT")
        XCTAssertEqual(r["socket_vsock_high_bits"], "EAFNOSUPPORT")
        XCTAssertEqual(r["socket_netlink_route"], "ALLOWED", "ordinary netlink (ip, ss) must keep working")
        XCTAssertEqual(r["socket_unix"], "ALLOWED")
        let hard = UInt64(r["nofile_hard"] ?? "") ?? .max
        XCTAssertLessThanOrEqual(hard, 1024, "RLIMIT_NOFILE bounds the domain's share of fs.file-max")
        XCTAssertGreaterThanOrEqual(hard, 512)
        XCTAssertEqual(r["raise_nofile"], "EPERM", "domain root cannot raise its hard limit")
    }

    /// Finding 7: domain root could open /proc/1/mem read-write, read
    /// /proc/1/fd (the console log, the control channel) and pidfd_getfd
    /// PID 1's descriptors. PID 1 from a host file now runs from an
    /// execute-only copy: non-dumpable, its memory owned by the host's user
    /// namespace.
    func testPidOneIsOutOfDomainRootsReach() throws {
        let r = try runScript("pid1", "/bin/attack pid1 > /rw/result 2>&1; echo uid=$(id -u) >> /rw/result",
                              extra: ["init": "/.odyssey/sh", "bind_ro.0": Fixtures.template + "/bin/busybox:/.odyssey/sh"])
        XCTAssertEqual(r["uid"], "0", "the attack runs as the domain's root: \(r)")
        for probe in ["open_proc1_mem_rw", "open_proc1_mem_ro", "readlink_proc1_fd1", "open_proc1_fd1", "open_proc1_environ"] {
            XCTAssertEqual(r[probe], "EACCES", "\(probe) as domain root: \(r)")
        }
        XCTAssertEqual(r["pidfd_getfd"], "EPERM")
        XCTAssertEqual(r["ptrace_attach"], "EPERM")
        // The copy init ran from: execute-only, host root's.
        let exec = dir + "/state/exec"
        let copies = (try? FileManager.default.contentsOfDirectory(atPath: exec)) ?? []
        XCTAssertEqual(copies.count, 1, "\(copies)")
        var st = stat()
        XCTAssertEqual(lstat(exec + "/" + (copies.first ?? ""), &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o111)
        XCTAssertEqual(st.st_uid, 0)
    }

    /// Finding 2: a deep tree in the domain's root (/var/tmp, the overlay
    /// upper layer in run_dir) overflowed the host's stack at cleanup. 20,000
    /// levels (with files and symlinks along the way) are removed now, and
    /// the plugin keeps working.
    func testDeepTreeInRootIsRemovedAtStop() throws {
        // Symlinks along the way point at a host directory (dangling inside
        // the domain): removal must take the links, never what they name.
        let sentinel = dir + "/sentinel"
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: true)
        try "keep\n".write(toFile: sentinel + "/keep", atomically: true, encoding: .utf8)
        _ = try startDomain("deep", "cd /var/tmp && /bin/attack deep 20000 \(sentinel) > /rw/result 2>&1", longRunning: false)
        XCTAssertTrue(waitStopped("deep", timeout: 300), "deep did not stop")
        let r = Fixtures.results(privateDir("deep") + "/result")
        XCTAssertEqual(r["deep"], "20000", "\(r)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir("deep")), "run_dir left behind")
        XCTAssertEqual(Fixtures.read(sentinel + "/keep"), "keep\n", "a symlink was followed")
        XCTAssertFalse(host.logs.contains { $0.contains("cleanup of deep") }, "\(host.logs)")
        // Still serving: the domain is defined and started again.
        try vmm.undefine("deep")
        let again = try runScript("deep", "echo done=1 > /rw/result", occurrence: 2)
        XCTAssertEqual(again["done"], "1")
    }

    /// Finding 2, recovery: a tree left in a run_dir by a host that died is
    /// removed at the next open (it crashed every start before).
    func testDeepTreeLeftBehindIsRemovedAtOpen() throws {
        let gate = try makeGate("left")
        let sentinel = dir + "/sentinel"
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: true)
        try "keep\n".write(toFile: sentinel + "/keep", atomically: true, encoding: .utf8)
        let pid = try startDomain("left", "cd /var/tmp && /bin/attack deep 20000 \(sentinel) > /rw/result 2>&1; read x < /rw/go")
        // The host goes away (domains outlive it), the domain finishes its
        // tree and is killed while nobody watches.
        vmm.close()
        openGate(gate)
        Glibc.kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        vmm = try VMM(plugin: plugin, host: host)
        XCTAssertEqual(Fixtures.results(privateDir("left") + "/result")["deep"], "20000")
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir("left")), "run_dir left behind")
        XCTAssertEqual(Fixtures.read(sentinel + "/keep"), "keep\n", "a symlink was followed")
        XCTAssertEqual(try vmm.info("left").state, ODY_STATE_HALTED.rawValue)
    }

    /// Finding 3: the first process to connect to a host channel socket
    /// won. Now the domain's user and its root (not PID 1) are refused,
    /// logged, and never see a byte; the real agent (PID 1) still gets in;
    /// later sockets of the domain are 0600 and owned by its root.
    func testChannelSocketAdmitsOnlyTheAgent() throws {
        let vchanDir = try shortSocketDir()
        let vchanHost = TestHost(config: ["socket_dir": vchanDir])
        let vchan = try VchanPlugin(host: vchanHost)
        let control = try vchan.serve("chan", port: 512)
        defer { vchan.close(control) }
        let path = "/run/odyssey/vchan/vchan.dom0.chan.512.sock"
        let script = """
        /bin/attack connect \(path) user 1000 > /rw/user 2>&1
        /bin/attack connect \(path) root > /rw/root 2>&1
        exec /bin/attack connect \(path) agent > /rw/agent 2>&1
        """
        // The host side answers whoever it admits, as AgentLink sends HELLO.
        let got = LockedBox<String>("")
        let served = expectation(description: "host served one client")
        vchan.answerInBackground(control, reply: "HELLO\n") { got.set($0); served.fulfill() }
        _ = try startDomain("chan", script, extra: ["bind_rw.0": "\(vchanDir)/chan:/run/odyssey/vchan"], longRunning: false)
        wait(for: [served], timeout: 30)
        XCTAssertTrue(waitStopped("chan"))
        let user = Fixtures.results(privateDir("chan") + "/user")
        let root = Fixtures.results(privateDir("chan") + "/root")
        let agent = Fixtures.results(privateDir("chan") + "/agent")
        XCTAssertEqual(user["uid"], "1000")
        // A refused peer is closed unanswered: EOF, or a reset when its own
        // bytes were still unread.
        XCTAssertTrue(["EOF", "ECONNRESET"].contains(user["got"] ?? ""), "the domain's user must get nothing: \(user)")
        XCTAssertTrue(["EOF", "ECONNRESET"].contains(root["got"] ?? ""), "domain root that is not PID 1 must get nothing: \(root)")
        XCTAssertEqual(agent["got"], "HELLO", "the agent (PID 1) is served: \(agent)")
        XCTAssertEqual(got.get(), "agent\n", "the host read the agent, not a forger")
        // Logged (at most once a second per domain, so a connect loop
        // cannot flood the host's log).
        let refusals = vchanHost.logs.filter { $0.contains("refused") }
        XCTAssertFalse(refusals.isEmpty, "\(vchanHost.logs)")
        XCTAssertTrue(refusals[0].contains("uid 1001000") && refusals[0].contains("not PID 1"), refusals[0])
    }

    /// Finding 3, ownership: once the agent is known, the next sockets in
    /// the domain's directory (ody run's data channels) are 0600 and owned
    /// by the domain's root, so its other users cannot even connect.
    func testLaterChannelSocketsBelongToTheAgent() throws {
        let vchanDir = try shortSocketDir()
        let vchanHost = TestHost(config: ["socket_dir": vchanDir])
        let vchan = try VchanPlugin(host: vchanHost)
        let control = try vchan.serve("own", port: 512)
        defer { vchan.close(control) }
        let gate = try makeGate("own")
        // PID 1 connects (the probe, exec'd so it stays PID 1, holding on
        // afterwards) while a user process waits at the gate for the data port.
        let agentScript = """
        ( read x < /rw/go; /bin/attack connect /run/odyssey/vchan/vchan.dom0.own.513.sock user 1000 > /rw/user 2>&1; echo done=1 > /rw/result ) &
        exec /bin/attack connect /run/odyssey/vchan/vchan.dom0.own.512.sock hold > /rw/agent 2>&1
        """
        let served = expectation(description: "agent served")
        vchan.answerInBackground(control, reply: "HELLO\n") { _ in served.fulfill() }
        let pid = try startDomain("own", agentScript, extra: ["bind_rw.0": "\(vchanDir)/own:/run/odyssey/vchan"])
        wait(for: [served], timeout: 30)
        let data = try vchan.serve("own", port: 513)
        defer { vchan.close(data) }
        var st = stat()
        XCTAssertEqual(lstat("\(vchanDir)/own/vchan.dom0.own.513.sock", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(st.st_uid, 1_000_000, "owned by the domain's root (host uid uid_base)")
        openGate(gate)
        XCTAssertTrue(eventually { Fixtures.results(self.privateDir("own") + "/result")["done"] == "1" })
        XCTAssertEqual(Fixtures.results(privateDir("own") + "/user")["connect"], "EACCES")
        try vmm.kill("own")
        assertNothingLeft("own", pid: pid)
    }

    /// Finding 5 (console part): a domain writing to its console forever
    /// cannot fill the disk: above console_log_max the newest bytes go to
    /// <name>.log.1 and the log starts again (init's writes continue at its
    /// new end, not at the old offset).
    func testConsoleLogIsCappedAndRotated() throws {
        vmm.close()
        host = TestHost(config: ["state_dir": dir + "/state", "cgroup_parent": cgParent, "console_log_max": "65536"])
        vmm = try VMM(plugin: plugin, host: host)
        let gate = try makeGate("noisy")
        let script = """
        i=0; while [ $i -lt 4096 ]; do echo "line $i ................................................................"; i=$((i+1)); done
        echo last-before-rotation
        read x < /rw/go
        echo after-rotation
        echo done=1 > /rw/result
        read x < /rw/go
        """
        let pid = try startDomain("noisy", script)
        let log = dir + "/state/console/noisy.log"
        XCTAssertTrue(eventually {
            FileManager.default.fileExists(atPath: log + ".1") && ((try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? -1) == 0
        }, "no rotation: \((try? FileManager.default.attributesOfItem(atPath: log)[.size]) ?? "missing")")
        let rotated = try Data(contentsOf: URL(fileURLWithPath: log + ".1"))
        XCTAssertEqual(rotated.count, 65536)
        XCTAssertTrue(String(decoding: rotated, as: UTF8.self).hasSuffix("last-before-rotation\n"))
        openGate(gate)
        XCTAssertTrue(eventually { Fixtures.results(self.privateDir("noisy") + "/result")["done"] == "1" })
        XCTAssertEqual(Fixtures.read(log), "after-rotation\n", "writes continue at the start of the truncated log")
        openGate(gate)
        XCTAssertTrue(waitStopped("noisy"))
        assertNothingLeft("noisy", pid: pid)
    }

    /// Red team of finding 14: undefine also removes the domain's console log
    /// and its rotation. Before, every destroyed disposable left
    /// console/dispNNNN.log (up to twice console_log_max) on the host for ever,
    /// and a new domain given a removed one's name inherited its log.
    func testUndefineRemovesTheConsoleLogs() throws {
        let log = dir + "/state/console/gone.log"
        try vmm.define("gone", params: params("gone", "echo said-something"))
        try vmm.start("gone")
        XCTAssertTrue(waitStopped("gone"))
        XCTAssertTrue(eventually { (Fixtures.read(log) ?? "").contains("said-something") }, "the console was logged")
        try Data("an older rotation".utf8).write(to: URL(fileURLWithPath: log + ".1"))
        try vmm.undefine("gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: log), "console log left after undefine")
        XCTAssertFalse(FileManager.default.fileExists(atPath: log + ".1"), "rotated console log left after undefine")
    }

    /// The bar's memory bomb: a domain with as many vcpus as the host has
    /// CPUs kept them all busy and slowed a call between two other domains
    /// 3x. Its CPU quota leaves host_cpu_reserve CPUs (default 1) over.
    func testADomainLeavesTheHostACPU() throws {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let quota = { (n: String) in Fixtures.read("/sys/fs/cgroup/cpu/\(self.cgParent)/\(n)/cpu.cfs_quota_us") }
        try vmm.define("busy", vcpus: UInt32(online), params: params("busy", "read x < /rw/go"))
        let gate = try makeGate("busy")
        try vmm.start("busy")
        XCTAssertEqual(quota("busy"), "\(max(1, online - 1) * 100_000)\n", "online CPUs \(online), reserve 1")
        openGate(gate)
        XCTAssertTrue(waitStopped("busy"))
        vmm.close()
        host = TestHost(config: ["state_dir": dir + "/state", "cgroup_parent": cgParent, "host_cpu_reserve": "0"])
        vmm = try VMM(plugin: plugin, host: host)
        try vmm.define("all", vcpus: UInt32(online), params: params("all", "read x < /rw/go"))
        let gate2 = try makeGate("all")
        try vmm.start("all")
        XCTAssertEqual(quota("all"), "\(online * 100_000)\n", "host_cpu_reserve = 0: as many CPUs as vcpus")
        openGate(gate2)
        XCTAssertTrue(waitStopped("all"))
    }

    /// Finding 14 (plugin side): a definition's uid range is free again at
    /// undefine: 300 define/undefine cycles keep landing on the first range.
    func testUndefineReleasesTheUidRange() throws {
        for i in 0..<300 {
            try vmm.define("d\(i)", params: params("d\(i)", "true"))
            XCTAssertEqual(Fixtures.read("\(dir)/state/domains/d\(i).def")?.contains("@index=0"), true, "cycle \(i)")
            try vmm.undefine("d\(i)")
        }
        XCTAssertEqual(try vmm.list(), [])
    }
}

extension NativeHardeningTests {
    /// Polls `condition` (every 20 ms, up to `timeout` s): for host-side
    /// observations that raise no plugin event.
    func eventually(timeout: TimeInterval = 30, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { return false }
            usleep(20_000)
        }
        return true
    }

    /// A socket_dir short enough for sun_path (107 bytes), removed afterwards.
    func shortSocketDir() throws -> String {
        let d = "/tmp/ovc-\(getpid())-\(name.hashValue & 0xffff)"
        try? FileManager.default.removeItem(atPath: d)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }
}

/// A value shared with a helper thread.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
