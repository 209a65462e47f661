// Issue 4 bars, through the real daemon and the real `ody`: start to agent
// ready, a command into a running domain, shutdown --wait, and 100 native
// domains at once. Needs root (namespaces); rows say so otherwise.
import FoundationEssentials
import Host
#if canImport(Glibc)
import Glibc
#endif

/// A daemon process with the native backend in a scratch state dir.
final class BenchDaemon {
    let dir: String
    let ody: String
    let socket: String
    private(set) var pid: pid_t = 0

    /// The cgroup every domain of this daemon lives under (one per daemon,
    /// so stop() kills exactly its own domains).
    let cgroupParent: String

    /// `topConfig`: top-level keys; `extraConfig`: sections, after ours.
    init?(_ env: BenchEnv, name: String, topConfig: String = "", extraConfig: String = "") {
        dir = env.scratch + "/" + name
        cgroupParent = "odyssey-bench-\(getpid())-\(name)"
        ody = env.buildDir + "/ody"
        socket = dir + "/state/admin.sock"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = """
        state_dir = "\(dir)/state"
        admin_socket = "\(socket)"
        plugin_dirs = ["\(env.pluginDir)"]
        policy_dirs = ["\(env.repoRoot)/config/policy.d"]
        agent_path = "\(env.pluginDir)/odyssey-agent"
        log_level = "warning"
        \(topConfig)
        [vmm]
        default = "native"
        [vmm.native]
        state_dir = "\(dir)/native"
        cgroup_parent = "\(cgroupParent)"
        [vchan.socket]
        socket_dir = "\(dir)/vchan"
        \(extraConfig)
        """
        guard (try? config.write(toFile: dir + "/odyssey.toml", atomically: true, encoding: .utf8)) != nil else { return nil }
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        posix_spawn_file_actions_addopen(&actions, 2, dir + "/odysseyd.log", O_WRONLY | O_CREAT, 0o644)
        let argv = [env.buildDir + "/odysseyd", "--config", dir + "/odyssey.toml", "--foreground", "--ready-fd", "3"]
        var cargs = argv.map { strdup($0) } + [nil]
        var p: pid_t = 0
        let rc = Sys.withCleanSpawnAttributes { attr in posix_spawn(&p, argv[0], &actions, &attr, &cargs, environ) }
        close(fds[1])
        posix_spawn_file_actions_destroy(&actions)
        for c in cargs { free(c) }
        var buf = [UInt8](repeating: 0, count: 8)
        guard rc == 0, read(fds[0], &buf, 8) > 0 else { close(fds[0]); return nil }
        close(fds[0])
        pid = p
    }

    /// Runs `ody ARGS` and returns (exit status, milliseconds).
    @discardableResult
    func ody(_ args: [String]) -> (Int32, Double) {
        let argv = [ody] + args
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for c in cargs { free(c) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, dir + "/ody.err", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let envStrings: [String] = ["ODYSSEY_SOCKET=\(socket)", "PATH=/usr/bin:/bin"]
        var env: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
        defer { for e in env { free(e) } }
        var p: pid_t = 0
        let t0 = nowNanos()
        guard posix_spawn(&p, ody, &actions, nil, &cargs, &env) == 0 else { return (-1, .nan) }
        var st: Int32 = 0
        waitpid(p, &st, 0)
        return ((st >> 8) & 0xff, Double(nowNanos() - t0) / 1e6)
    }

    /// The last lines `ody` wrote on stderr (shown when a step fails).
    var errorTail: String {
        let text = FileManager.default.contents(atPath: dir + "/ody.err").map { String(decoding: $0, as: UTF8.self) } ?? ""
        return text.split(separator: "\n").suffix(3).joined(separator: " | ")
    }

    /// Stops the daemon and the domains it started: native domains outlive
    /// their daemon on purpose (it re-adopts them), so a benchmark that only
    /// stopped the daemon would leave them running and load every later row.
    func stop() {
        let base = "/sys/fs/cgroup/pids/" + cgroupParent
        // Through the daemon first, so each stop is processed (volumes
        // unmounted, cgroups removed) and nothing is left on the host.
        if pid > 0 {
            for domain in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where !domain.contains(".") {
                ody(["kill", domain])
            }
            kill(pid, SIGTERM); var st: Int32 = 0; waitpid(pid, &st, 0); pid = 0
        }
        for domain in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            let procs = FileManager.default.contents(atPath: "\(base)/\(domain)/cgroup.procs").map { String(decoding: $0, as: UTF8.self) } ?? ""
            for line in procs.split(separator: "\n") { if let p = pid_t(line) { kill(p, SIGKILL) } }
        }
        removeCgroups(parent: cgroupParent)
    }
}

/// Removes what a bench daemon that stopped before its last cleanups left
/// under `parent` in every controller (empty cgroups only: rmdir refuses
/// one with a process), then `parent` itself.
func removeCgroups(parent: String) {
    for c in ["memory", "pids", "freezer", "cpu", "cpuacct"] {
        let dir = "/sys/fs/cgroup/\(c)/\(parent)"
        for d in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !d.contains(".") && d != "tasks" {
            for _ in 0..<100 where rmdir("\(dir)/\(d)") != 0 && errno == EBUSY { usleep(10_000) }
        }
        rmdir(dir)
    }
}

/// A busybox root the agent can run in (sh + passwd), for fast templates.
func busyboxRootfs(_ dir: String) -> String? {
    let root = dir + "/busybox-root"
    for d in ["bin", "etc", "home", "root", "tmp", "proc", "dev", "rw", "run"] {
        try? FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
    }
    guard (try? FileManager.default.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")) != nil else { return nil }
    for a in ["sh", "true", "cat", "echo", "sleep"] { try? FileManager.default.createSymbolicLink(atPath: root + "/bin/" + a, withDestinationPath: "busybox") }
    try? "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
    try? "root:x:0:\nuser:x:1000:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
    return root
}

func domainBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    guard geteuid() == 0 else {
        return [BenchRow(name: "domain benchmarks (need root: namespaces)", unit: "-", median: .nan, bar: "run as root", passed: false)]
    }
    guard let d = BenchDaemon(env, name: "domains"), let rootfs = busyboxRootfs(env.scratch) else {
        return [BenchRow(name: "domain benchmarks: daemon did not start", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    defer { d.stop() }
    d.ody(["template", "create", "tpl", "--from-rootfs", rootfs])
    d.ody(["create", "work", "--class", "AppVM", "--template", "tpl", "--label", "blue"])
    let runs = 21
    var start: [Double] = [], stop: [Double] = [], run: [Double] = []
    for _ in 0..<runs {
        let (s1, t1) = d.ody(["start", "work"])
        if s1 == 0 { start.append(t1) }
        let (s2, t2) = d.ody(["run", "work", "-p", "--", "true"])
        if s2 == 0 { run.append(t2) }
        let (s3, t3) = d.ody(["shutdown", "--wait", "work"])
        if s3 == 0 { stop.append(t3) }
    }
    d.ody(["start", "work"])
    var warm: [Double] = []
    for _ in 0..<runs { let (s, t) = d.ody(["run", "work", "-p", "--", "true"]); if s == 0 { warm.append(t) } }
    d.ody(["shutdown", "--wait", "work"])
    let bwrap = median((0..<runs).map { _ in spawnAndWaitMs("/usr/bin/bwrap", ["--ro-bind", "/", "/", "--unshare-all", "--dev", "/dev", "--proc", "/proc", "/bin/true"]) })
    let trueMs = median((0..<runs).map { _ in spawnAndWaitMs("/bin/true") })
    var rows: [BenchRow] = []
    if start.isEmpty || run.isEmpty || stop.isEmpty { print("domain bench: ody failed: \(d.errorTail)") }
    let m1 = median(start)
    rows.append(BenchRow(name: "ody start (to agent ready)", unit: "ms", median: m1, p99: percentile(start, 99), bar: "<= 40 ms",
                         passed: start.count == runs && m1 <= 40, baseline: "bwrap --unshare-all true \(fmt(bwrap)) ms",
                         ratio: String(format: "%.1fx", m1 / bwrap)))
    let m2 = median(warm)
    rows.append(BenchRow(name: "ody run work -p -- true (running domain)", unit: "ms", median: m2, p99: percentile(warm, 99), bar: "<= 3 ms",
                         passed: warm.count == runs && m2 <= 3, baseline: "posix_spawn /bin/true \(fmt(trueMs)) ms"))
    let m3 = median(stop)
    rows.append(BenchRow(name: "ody shutdown --wait", unit: "ms", median: m3, p99: percentile(stop, 99), bar: "<= 20 ms",
                         passed: stop.count == runs && m3 <= 20, baseline: "posix_spawn /bin/true \(fmt(trueMs)) ms"))
    rows += hundredDomains(d)
    return rows
}

/// 100 native domains running at once: daemon RSS and per-domain overhead.
func hundredDomains(_ d: BenchDaemon) -> [BenchRow] {
    let before = readRSSKiB(d.pid) / 1024
    var started = 0
    for i in 0..<100 {
        // 100 MiB each: the daemon refuses starts whose memory limits add
        // up to more than host RAM minus memory_reserve_mib.
        d.ody(["create", "d\(i)", "--class", "AppVM", "--template", "tpl", "--label", "green", "--prop", "maxmem=100"])
        if d.ody(["start", "d\(i)"]).0 == 0 { started += 1 }
    }
    usleep(300_000)
    let after = readRSSKiB(d.pid) / 1024
    // Each agent's own memory (private pages), the part a domain adds.
    var agentPrivate: [Double] = []
    for pid in agentPids() { agentPrivate.append(privateKiB(pid) / 1024) }
    let perDomain = (after - before) / Double(max(started, 1)) + median(agentPrivate)
    for i in 0..<100 { d.ody(["kill", "d\(i)"]) }
    return [
        BenchRow(name: "odysseyd RSS with \(started)/100 native domains running", unit: "MB", median: after, bar: "<= 40 MB",
                 passed: started == 100 && after <= 40, baseline: "idle \(fmt(before)) MB"),
        BenchRow(name: "per-domain overhead (agent private + daemon bookkeeping)", unit: "MB", median: perDomain, bar: "<= 2 MB",
                 passed: started == 100 && perDomain <= 2, baseline: "agent private \(fmt(median(agentPrivate))) MB"),
    ]
}

func agentPids() -> [pid_t] {
    guard let d = opendir("/proc") else { return [] }
    defer { closedir(d) }
    var out: [pid_t] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = pid_t(name), let comm = FileManager.default.contents(atPath: "/proc/\(pid)/comm") else { continue }
        if String(decoding: comm, as: UTF8.self).hasPrefix("odyssey-agent") { out.append(pid) }
    }
    return out
}

func privateKiB(_ pid: pid_t) -> Double {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/smaps_rollup") else { return .nan }
    var total = 0.0
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Private_") {
        total += Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return total
}
