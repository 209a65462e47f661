// vmm-native for real: domains in namespaces, attacked from inside, observed
// from the host. Needs root (skips with the reason otherwise; CI runs as root).
import Foundation
import PluginABI
import XCTest

class NativeTestCase: XCTestCase {
    var plugin: LoadedPlugin!
    var host: TestHost!
    var vmm: VMM!
    var dir = ""
    let cgParent = "odyssey-test-\(getpid())"

    /// After each test class: the template, state and private dirs go.
    override class func tearDown() {
        Fixtures.removeAll()
        super.tearDown()
    }

    override func setUpWithError() throws {
        try Fixtures.requireRoot()
        try Fixtures.buildTemplate()
        plugin = try LoadedPlugin.load()
        let testName = name.filter { $0.isLetter || $0.isNumber }
        dir = Fixtures.base + "/" + testName
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        host = TestHost(config: ["state_dir": dir + "/state", "cgroup_parent": cgParent, "shutdown_timeout_ms": "3000"])
        vmm = try VMM(plugin: plugin, host: host)
    }

    override func tearDown() {
        if let vmm, vmm.raw != nil {
            for n in (try? vmm.list()) ?? [] {
                if let i = try? vmm.info(n), i.state != ODY_STATE_HALTED.rawValue, i.state != ODY_STATE_CRASHED.rawValue {
                    try? vmm.kill(n)
                }
            }
            vmm.close()
        }
        for c in ["memory", "pids", "freezer", "cpu", "cpuacct"] { rmdir("/sys/fs/cgroup/\(c)/\(cgParent)") }
        super.tearDown()
    }

    func privateDir(_ n: String) -> String { "\(dir)/private/\(n)" }
    func runDir(_ n: String) -> String { "\(dir)/run/\(n)" }

    func params(_ n: String, _ script: String, _ extra: [String: String] = [:]) -> [String: String] {
        var p = ["root_dir": Fixtures.template, "private_dir": privateDir(n), "run_dir": runDir(n),
                 "init": "/bin/sh", "arg0": "-c", "arg1": script]
        for (k, v) in extra { p[k] = v }
        return p
    }

    /// Defines and starts a domain whose init is `/bin/sh -c script`.
    /// `longRunning`: the script does not end on its own, so the domain
    /// must still be Running when start returns.
    func startDomain(_ n: String, _ script: String, memory: UInt64 = 0, maxmem: UInt64 = 0,
                     extra: [String: String] = [:], longRunning: Bool = true) throws -> Int32 {
        try vmm.define(n, memory: memory, maxmem: maxmem, params: params(n, script, extra))
        try vmm.start(n)
        guard longRunning else { return -1 }
        let i = try vmm.info(n)
        XCTAssertEqual(i.state, ODY_STATE_RUNNING.rawValue)
        XCTAssertGreaterThan(i.pid, 0)
        return i.pid
    }

    /// Runs a script to completion (its Halted/Crashed event) and returns
    /// the key=value lines it wrote to /rw/result.
    func runScript(_ n: String, _ script: String, memory: UInt64 = 0, maxmem: UInt64 = 0,
                   extra: [String: String] = [:], occurrence: Int = 1,
                   file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        _ = try startDomain(n, script, memory: memory, maxmem: maxmem, extra: extra, longRunning: false)
        XCTAssertTrue(waitStopped(n, occurrence: occurrence), "\(n) did not stop", file: file, line: line)
        return Fixtures.results(privateDir(n) + "/result")
    }

    func waitStopped(_ n: String, occurrence: Int = 1, timeout: TimeInterval = 20) -> Bool {
        host.waitUntil(timeout: timeout) { events in
            events.filter { $0.domain == n && ($0.state == ODY_STATE_HALTED.rawValue || $0.state == ODY_STATE_CRASHED.rawValue) }
                .count >= occurrence
        }
    }

    /// A FIFO in the domain's private dir: the domain blocks reading it until
    /// the test writes, a real synchronisation point with no sleeps.
    func makeGate(_ n: String, _ gate: String = "go") throws -> String {
        try FileManager.default.createDirectory(atPath: privateDir(n), withIntermediateDirectories: true)
        let p = privateDir(n) + "/" + gate
        XCTAssertEqual(mkfifo(p, 0o666), 0)
        chmod(p, 0o666)
        return p
    }

    func openGate(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
        // Waits (at most 30 s) until the domain opens it for reading: a domain
        // that died fails the test instead of hanging the whole run.
        var fd: Int32 = -1
        for _ in 0..<3000 {
            fd = open(path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 || errno != ENXIO { break }
            usleep(10_000)
        }
        XCTAssertGreaterThanOrEqual(fd, 0, "nobody read the gate \(path) within 30 s", file: file, line: line)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        _ = "go\n".withCString { write(fd, $0, 3) }
        close(fd)
    }

    /// Stopping leaves nothing: process, cgroups, run_dir, mounts, run record.
    func assertNothingLeft(_ n: String, pid: Int32, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(Fixtures.processAlive(pid), "init \(pid) of \(n) still alive", file: file, line: line)
        XCTAssertEqual(Fixtures.cgroupDirs(parent: cgParent, name: n), [], "cgroups left", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir(n)), "run_dir left", file: file, line: line)
        XCTAssertEqual(Fixtures.mounts(under: dir), [], "host mounts left", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/state/running/\(n).run"), "run record left", file: file, line: line)
        if let i = try? vmm.info(n) {
            XCTAssertTrue(i.state == ODY_STATE_HALTED.rawValue || i.state == ODY_STATE_CRASHED.rawValue, file: file, line: line)
            XCTAssertEqual(i.pid, -1, file: file, line: line)
        }
    }
}

final class NativeIsolationTests: NativeTestCase {
    /// Everything a domain can try from inside, in one domain: processes,
    /// network, hostname, uid, seccomp, mounts, modules. The host checks the
    /// uid mapping while the domain waits on a gate.
    func testIsolationFromInside() throws {
        let gate = try makeGate("iso")
        let script = """
        r=/rw/result
        echo "hostname=$(hostname)" > $r
        echo "uid=$(id -u)" >> $r
        set -- /proc/[0-9]*; echo "procs=$#" >> $r
        echo "ps_lines=$(ps -o pid | wc -l)" >> $r
        echo "links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')" >> $r
        echo "seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d '\\t ' | cut -d: -f2)" >> $r
        echo "nnp=$(grep '^NoNewPrivs:' /proc/self/status | tr -d '\\t ' | cut -d: -f2)" >> $r
        mount -t tmpfs x /mnt 2>/dev/null; echo "mount_cmd=$?" >> $r
        insmod /lib/modules/none.ko 2>/dev/null; echo "insmod_cmd=$?" >> $r
        test -e \(Fixtures.base) && echo host_tree=visible >> $r || echo host_tree=hidden >> $r
        /bin/probe >> $r
        echo "template_write=$(echo changed > /etc/template-version && echo ok || echo fail)" >> $r
        read x < /rw/go
        echo done=1 >> $r
        """
        let pid = try startDomain("iso", script)

        // Host side, while the domain waits at the gate: init runs as the
        // domain's unprivileged uid range (first domain: index 0 -> 1000000),
        // in its own user namespace.
        let status = Fixtures.read("/proc/\(pid)/status") ?? ""
        let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""
        XCTAssertEqual(uidLine.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().map(String.init),
                       ["1000000", "1000000", "1000000", "1000000"])
        XCTAssertEqual(Fixtures.read("/proc/\(pid)/uid_map")?.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init),
                       ["0", "1000000", "65536"])
        for ns in ["user", "pid", "mnt", "net", "ipc", "uts", "cgroup"] {
            let mine = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(ns)")
            let theirs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(ns)")
            XCTAssertNotEqual(mine, theirs, "\(ns) namespace is shared with the host")
        }
        XCTAssertEqual(Fixtures.read("/sys/fs/cgroup/pids/\(cgParent)/iso/pids.max"), "1024\n")
        openGate(gate)
        XCTAssertTrue(waitStopped("iso"))
        let r = Fixtures.results(privateDir("iso") + "/result")
        XCTAssertEqual(r["done"], "1", "script did not finish: \(r)")
        XCTAssertEqual(r["hostname"], "iso")
        XCTAssertEqual(r["uid"], "0")
        XCTAssertLessThanOrEqual(Int(r["procs"] ?? "99") ?? 99, 2, "sees processes beyond its own: \(r)")
        XCTAssertLessThanOrEqual(Int(r["ps_lines"] ?? "99") ?? 99, 6) // header, init, the $(...) subshell, ps, wc
        XCTAssertEqual(r["links"]?.trimmingCharacters(in: .whitespaces), "lo")
        XCTAssertEqual(r["seccomp"], "2")
        XCTAssertEqual(r["nnp"], "1")
        XCTAssertNotEqual(r["mount_cmd"], "0")
        XCTAssertNotEqual(r["insmod_cmd"], "0")
        XCTAssertEqual(r["host_tree"], "hidden")
        XCTAssertEqual(r["template_write"], "ok", "an AppVM's root is writable (changes are discarded)")
        for call in ["init_module", "finit_module", "delete_module", "kexec_load", "bpf", "keyctl", "add_key", "ptrace",
                     "mount", "umount2", "pivot_root", "unshare_user", "unshare_mount", "setns", "perf_event_open",
                     "userfaultfd", "acct", "swapoff", "reboot", "syslog", "iopl", "open_by_handle_at", "sethostname"] {
            XCTAssertEqual(r[call], "EPERM", "\(call) from inside a domain")
        }
        XCTAssertEqual(r["clone3"], "ENOSYS")
        XCTAssertEqual(Fixtures.read(Fixtures.template + "/etc/template-version"), "template-v1\n")
        XCTAssertTrue(host.waitFor("iso", ODY_STATE_HALTED))
        XCTAssertEqual(host.states(of: "iso"), [ODY_STATE_RUNNING.rawValue, ODY_STATE_HALTED.rawValue])
        assertNothingLeft("iso", pid: pid)
    }

    /// Two domains from one template: neither sees the other's private files
    /// or root changes; the template stays untouched; an AppVM's root changes
    /// are gone at its next start while its private changes persist.
    func testDomainsAreSeparateAndRootIsDiscarded() throws {
        let a = try runScript("alpha", """
        echo secret-a > /rw/secret; echo hacked > /etc/hacked; echo x >> /bin/busybox 2>/dev/null
        echo done=1 > /rw/result
        """)
        XCTAssertEqual(a["done"], "1")
        XCTAssertEqual(Fixtures.read(privateDir("alpha") + "/secret"), "secret-a\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: Fixtures.template + "/etc/hacked"))

        let b = try runScript("beta", """
        r=/rw/result
        test -e /etc/hacked && echo hacked=seen > $r || echo hacked=absent > $r
        echo "secrets=$(find / -path /proc -prune -o -name secret -print 2>/dev/null | wc -l)" >> $r
        cat \(privateDir("alpha"))/secret >/dev/null 2>&1 && echo alpha_private=readable >> $r || echo alpha_private=unreachable >> $r
        echo "busybox_size_ok=$(test $(wc -c < /bin/busybox) -eq \((try? FileManager.default.attributesOfItem(atPath: Fixtures.template + "/bin/busybox")[.size] as? Int) ?? -1) && echo yes || echo no)" >> $r
        """)
        XCTAssertEqual(b["hacked"], "absent")
        XCTAssertEqual(b["secrets"], "0")
        XCTAssertEqual(b["alpha_private"], "unreachable")
        XCTAssertEqual(b["busybox_size_ok"], "yes")
        // Different uid ranges on the host (index 0 and 1), but on disk each
        // private volume holds the guest's own ids: its root is 0 in both
        // (PrivateOwnershipTests checks the rest).
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: privateDir("alpha"))[.ownerAccountID] as? Int, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: privateDir("beta"))[.ownerAccountID] as? Int, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: privateDir("alpha") + "/secret")[.ownerAccountID] as? Int, 0)

        // alpha again: root changes discarded, private kept.
        try FileManager.default.removeItem(atPath: privateDir("alpha") + "/result")
        try vmm.undefine("alpha")
        let again = try runScript("alpha", """
        r=/rw/result
        test -e /etc/hacked && echo hacked=kept > $r || echo hacked=discarded > $r
        echo "secret=$(cat /rw/secret)" >> $r
        echo "home=$(test -d /home && echo ok)" >> $r
        """, occurrence: 2)
        XCTAssertEqual(again["hacked"], "discarded")
        XCTAssertEqual(again["secret"], "secret-a")
        XCTAssertEqual(again["home"], "ok")
    }

    /// A domain controls its private volume: turning /rw/home into a symlink
    /// to a host directory must not get that directory mounted next time.
    func testPrivateVolumeSymlinkIsRefused() throws {
        let hostSecret = dir + "/host-secret"
        try FileManager.default.createDirectory(atPath: hostSecret, withIntermediateDirectories: true)
        try "do not leak\n".write(toFile: hostSecret + "/key", atomically: true, encoding: .utf8)
        _ = try runScript("evil", "rm -rf /rw/home && ln -s \(hostSecret) /rw/home && echo done=1 > /rw/result")
        XCTAssertEqual(Fixtures.results(privateDir("evil") + "/result")["done"], "1")
        XCTAssertThrowsError(try vmm.start("evil")) { e in
            let m = (e as? VMM.Failure)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("home") && m.contains("symlink"), m)
        }
        XCTAssertEqual(Fixtures.cgroupDirs(parent: cgParent, name: "evil"), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir("evil")))
    }

    /// maxmem 32 MiB: an 8 MiB buffer works, a 100 MiB one is OOM-killed.
    func testMemoryLimitOOMKills() throws {
        let r = try runScript("mem", """
        dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null; echo "small=$?" > /rw/result
        dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo "big=$?" >> /rw/result
        """, memory: 16, maxmem: 32)
        XCTAssertEqual(r["small"], "0")
        XCTAssertEqual(r["big"], "137", "expected SIGKILL by the OOM killer")
        XCTAssertTrue(host.lastMessage(of: "mem").contains("OOM"), host.lastMessage(of: "mem"))
    }

    /// A fork bomb hits pids_max and the domain stays killable; nothing leaks.
    func testPidsLimitStopsForkBomb() throws {
        let pid = try startDomain("bomb", "trap 'exit 0' TERM; (f() { f | f & }; f) 2>/dev/null & while :; do wait; done",
                                  extra: ["pids_max": "40"])
        let events = "/sys/fs/cgroup/pids/\(cgParent)/bomb/pids.events"
        let deadline = Date().addingTimeInterval(20)
        var hits = 0
        repeat { // waiting for a kernel counter: there is no event to block on
            hits = Int(Fixtures.read(events)?.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        } while hits == 0 && Date() < deadline && usleep(2000) == 0
        XCTAssertGreaterThan(hits, 0, "the fork bomb never hit pids.max")
        let current = Int(Fixtures.read("/sys/fs/cgroup/pids/\(cgParent)/bomb/pids.current")?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 999
        XCTAssertLessThanOrEqual(current, 40)
        try vmm.kill("bomb")
        XCTAssertEqual(try vmm.info("bomb").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("bomb", pid: pid)
    }

    /// Pause freezes the whole domain (freezer FROZEN), unpause thaws it, and
    /// shutdown --wait returns with the domain halted and everything removed.
    func testPauseUnpauseShutdown() throws {
        let pid = try startDomain("frz", "trap 'exit 0' TERM; while :; do sleep 100 & wait; done")
        let state = "/sys/fs/cgroup/freezer/\(cgParent)/frz/freezer.state"
        try vmm.pause("frz")
        XCTAssertEqual(Fixtures.read(state), "FROZEN\n")
        XCTAssertEqual(try vmm.info("frz").state, ODY_STATE_PAUSED.rawValue)
        XCTAssertThrowsError(try vmm.shutdown("frz")) { XCTAssertEqual(($0 as? VMM.Failure)?.code, ODY_E_STATE.rawValue) }
        try vmm.unpause("frz")
        XCTAssertEqual(Fixtures.read(state), "THAWED\n")
        let i = try vmm.info("frz")
        XCTAssertEqual(i.state, ODY_STATE_RUNNING.rawValue)
        XCTAssertGreaterThan(i.memory_kib, 0)
        try vmm.shutdown("frz", wait: true)
        XCTAssertEqual(try vmm.info("frz").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("frz", pid: pid)
        // Lifecycle events come from the plugin's reaper thread: wait for the last one.
        XCTAssertTrue(host.waitFor("frz", ODY_STATE_HALTED))
        XCTAssertEqual(host.states(of: "frz"), [ODY_STATE_RUNNING, ODY_STATE_PAUSED, ODY_STATE_RUNNING, ODY_STATE_HALTED].map(\.rawValue))
    }

    /// Killing a paused domain works (frozen tasks are thawed to die).
    func testKillPausedDomain() throws {
        let pid = try startDomain("kp", "while :; do sleep 100; done")
        try vmm.pause("kp")
        try vmm.kill("kp")
        XCTAssertEqual(try vmm.info("kp").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("kp", pid: pid)
    }

    /// An init that ignores SIGTERM is killed after shutdown_timeout_ms.
    func testShutdownEscalatesToKill() throws {
        let pid = try startDomain("stubborn", "trap '' TERM; while :; do sleep 100 & wait; done")
        let t0 = Date()
        try vmm.shutdown("stubborn", wait: true)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 2.9)
        assertNothingLeft("stubborn", pid: pid)
    }

    /// The host dies (here: the instance is closed without stopping); a new
    /// instance re-adopts the running domain and stops it cleanly, and cleans
    /// up a domain that died while nobody watched.
    func testReadoptionAfterRestart() throws {
        let keepPid = try startDomain("keep", "trap 'exit 0' TERM; while :; do sleep 100 & wait; done")
        let gonePid = try startDomain("gone", "while :; do sleep 100; done")
        vmm.close()
        XCTAssertTrue(Fixtures.processAlive(keepPid))
        // "gone" dies while the host is away, and someone else reaps it.
        Glibc.kill(gonePid, SIGKILL)
        var st: Int32 = 0
        XCTAssertEqual(waitpid(gonePid, &st, 0), gonePid)

        vmm = try VMM(plugin: plugin, host: host)
        XCTAssertEqual(try vmm.list(), ["gone", "keep"])
        let keep = try vmm.info("keep")
        XCTAssertEqual(keep.state, ODY_STATE_RUNNING.rawValue)
        XCTAssertEqual(keep.pid, keepPid)
        XCTAssertEqual(try vmm.info("gone").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("gone", pid: gonePid)

        try vmm.shutdown("keep", wait: true)
        XCTAssertEqual(try vmm.info("keep").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("keep", pid: keepPid)
    }

    /// A failing step comes back as a precise error, and leaves nothing.
    func testStartFailuresArePrecise() throws {
        try vmm.define("noinit", params: params("noinit", "") .merging(["init": "/nonexistent/init"]) { $1 })
        XCTAssertThrowsError(try vmm.start("noinit")) { e in
            let m = (e as? VMM.Failure)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("exec init") && m.contains("ENOENT") && m.contains("/nonexistent/init"), m)
        }
        XCTAssertEqual(try vmm.info("noinit").state, ODY_STATE_HALTED.rawValue)
        XCTAssertEqual(Fixtures.cgroupDirs(parent: cgParent, name: "noinit"), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir("noinit")))

        try vmm.define("noroot", params: params("noroot", "true").merging(["root_dir": dir + "/missing-root"]) { $1 })
        XCTAssertThrowsError(try vmm.start("noroot")) { e in
            let m = (e as? VMM.Failure)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("root_dir") && m.contains("ENOENT"), m)
        }
        XCTAssertEqual(Fixtures.cgroupDirs(parent: cgParent, name: "noroot"), [])

        // A domain whose init exits non-zero on its own has crashed.
        _ = try runScript("crash", "exit 3")
        XCTAssertTrue(host.waitFor("crash", ODY_STATE_CRASHED))
        XCTAssertEqual(host.states(of: "crash").last, ODY_STATE_CRASHED.rawValue)
        XCTAssertEqual(try vmm.info("crash").state, ODY_STATE_CRASHED.rawValue)
        // ...and can start again.
        try vmm.start("crash")
        XCTAssertTrue(waitStopped("crash", occurrence: 2))
    }

    /// root_mode=persistent: the root itself is writable (TemplateVM); files
    /// the domain's root writes land on disk owned by host root, through the
    /// idmapped mount.
    func testPersistentRoot() throws {
        let root = dir + "/tvm-root"
        try Fixtures.run("/bin/cp", ["-a", Fixtures.template, root])
        let r = try runScript("tvm", "echo installed > /etc/package; echo \"owner=$(stat -c %u /etc/package)\" > /rw/result",
                              extra: ["root_dir": root, "root_mode": "persistent"])
        XCTAssertEqual(r["owner"], "0")
        XCTAssertEqual(Fixtures.read(root + "/etc/package"), "installed\n")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: root + "/etc/package")[.ownerAccountID] as? Int, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Fixtures.template + "/etc/package"))
    }

    /// Binds, environment and argv reach init; hostname override.
    func testParamsReachInit() throws {
        let shared = dir + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        try "from-host\n".write(toFile: shared + "/hello", atomically: true, encoding: .utf8)
        chown(shared, 1_000_000, 1_000_000) // the domain's root may write a bind_rw tree it owns
        let r = try runScript("prm", """
        r=/rw/result
        echo "hello=$(cat /run/odyssey/vchan/hello)" > $r
        echo x > /run/odyssey/vchan/new 2>/dev/null && echo ro=no >> $r || echo ro=yes >> $r
        echo rwtest > /mnt/rw/out && echo rw=yes >> $r
        echo "env=$FOO" >> $r
        echo "host=$(hostname)" >> $r
        echo "tmp=$(df -m /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2)" >> $r
        """, extra: ["bind_ro.0": "\(shared):/run/odyssey/vchan", "bind_rw.0": "\(shared):/mnt/rw",
                     "env.FOO": "bar baz", "hostname": "custom-host", "volatile_mib": "64"])
        XCTAssertEqual(r["hello"], "from-host")
        XCTAssertEqual(r["ro"], "yes")
        XCTAssertEqual(r["rw"], "yes")
        XCTAssertEqual(r["env"], "bar baz")
        XCTAssertEqual(r["host"], "custom-host")
        XCTAssertEqual(r["tmp"], "64")
        XCTAssertEqual(Fixtures.read(shared + "/out"), "rwtest\n")
    }
}
