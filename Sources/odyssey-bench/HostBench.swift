// Issue 2 bars: plugin load time, odysseyd exec-to-ready, idle resident memory.
// Each measurement runs in a fresh process (a loaded plugin is never
// unloaded, so loading twice in one process would measure a cache hit).
import Foundation
import Host
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct BenchEnv {
    let buildDir: String
    let pluginDir: String
    let repoRoot: String
    let selfPath: String
    let scratch: String

    static func fromEnvironment() -> BenchEnv {
        let env = ProcessInfo.processInfo.environment
        let selfPath = URL(fileURLWithPath: CommandLine.arguments[0]).standardized.path
        let build = env["ODYSSEY_BUILD_DIR"] ?? (selfPath as NSString).deletingLastPathComponent
        let root = FileManager.default.currentDirectoryPath
        let scratch = NSTemporaryDirectory() + "odyssey-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let plugins = env["ODYSSEY_PLUGIN_DIR"].map { $0.hasPrefix("/") ? $0 : root + "/" + $0 } ?? root + "/build/plugins-release"
        return BenchEnv(buildDir: build, pluginDir: plugins,
                        repoRoot: root, selfPath: selfPath, scratch: scratch)
    }
}

/// `odyssey-bench --load-once MANIFEST`: loads one plugin in this fresh
/// process and prints the nanoseconds it took (dlopen + entry + checks).
func loadOnce(_ manifest: String) -> Never {
    let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    let loader = PluginLoader(logger: logger, events: EventBus())
    let t0 = nowNanos()
    let r = loader.load(manifestPath: manifest, into: PluginRegistry())
    let dt = nowNanos() - t0
    if case .failure(let e) = r { print("ERROR \(e)"); exit(1) }
    print(dt)
    exit(0)
}

/// `odyssey-bench --dlopen-once LIB`: the baseline, a bare dlopen.
func dlopenOnce(_ lib: String) -> Never {
    let t0 = nowNanos()
    guard dlopen(lib, RTLD_NOW | RTLD_LOCAL) != nil else { print("ERROR dlopen"); exit(1) }
    print(nowNanos() - t0)
    exit(0)
}

func runCapture(_ exe: String, _ args: [String]) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try? p.run()
    let d = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

func hostBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    var rows: [BenchRow] = []
    let runs = 21

    // A C plugin: the vendor example, built the vendor's way.
    let cDir = env.scratch + "/c-plugin"
    try? FileManager.default.createDirectory(atPath: cDir, withIntermediateDirectories: true)
    let example = env.repoRoot + "/Plugins/examples/hello-addon"
    _ = runCapture("/usr/bin/cc", ["-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", env.repoRoot + "/Sources/PluginABI/include",
                                   "-o", cDir + "/libhello-addon.so", example + "/hello.c"])
    try? FileManager.default.copyItem(atPath: example + "/hello-addon.json", toPath: cDir + "/hello-addon.json")

    func medianOf(_ args: [String]) -> Double? {
        var v: [Double] = []
        for _ in 0..<runs {
            let out = runCapture(env.selfPath, args)
            guard let ns = Double(out) else { return nil }
            v.append(ns / 1e6)
        }
        return median(v)
    }

    let baseline = medianOf(["--dlopen-once", cDir + "/libhello-addon.so"])
    let baseText = baseline.map { "bare dlopen of the C plugin \(fmt($0)) ms" } ?? "baseline failed"
    var candidates: [(String, String)] = [("C plugin (hello-addon)", cDir + "/hello-addon.json")]
    for name in ["vmm-native", "vchan-socket", "vmm-libvirt", "vmm-xen"] {
        let m = env.pluginDir + "/\(name).json"
        if FileManager.default.fileExists(atPath: m) { candidates.append(("Swift plugin \(name)", m)) }
    }
    for (label, manifest) in candidates {
        guard let ms = medianOf(["--load-once", manifest]) else {
            rows.append(BenchRow(name: "load \(label)", unit: "ms", median: .nan, bar: "<= 1 ms", passed: false, baseline: "load failed"))
            continue
        }
        // libvirt and libxl are large C libraries the plugin links; their own
        // load time is counted, and noted, because the host pays it.
        rows.append(BenchRow(name: "load \(label)", unit: "ms", median: ms, bar: "<= 1 ms", passed: ms <= 1.0,
                             baseline: baseText, ratio: baseline.map { String(format: "%.1fx", ms / $0) } ?? ""))
    }

    rows += daemonBenchmarks(env, runs: runs)
    return rows
}

/// odysseyd with every first-party plugin: exec to READY, and idle RSS.
func daemonBenchmarks(_ env: BenchEnv, runs: Int) -> [BenchRow] {
    let daemon = env.buildDir + "/odysseyd"
    let dir = env.scratch + "/daemon"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let config = dir + "/odyssey.toml"
    try? """
    state_dir = "\(dir)/state"
    admin_socket = "\(dir)/state/admin.sock"
    plugin_dirs = ["\(env.pluginDir)"]
    policy_dirs = ["\(env.repoRoot)/config/policy.d"]
    log_level = "warning"
    [vmm.libvirt]
    uri = "test:///default"
    """.write(toFile: config, atomically: true, encoding: .utf8)

    var startMs: [Double] = [], rssMB: [Double] = []
    for i in 0..<runs {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = [daemon, "--config", config, "--foreground", "--ready-fd", "3"]
        var cargs = argv.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let t0 = nowNanos()
        let rc = Sys.withCleanSpawnAttributes { attr in posix_spawn(&pid, daemon, &actions, &attr, &cargs, environ) }
        close(fds[1])
        posix_spawn_file_actions_destroy(&actions)
        for p in cargs { free(p) }
        guard rc == 0 else { break }
        var buf = [UInt8](repeating: 0, count: 8)
        let n = read(fds[0], &buf, 8)
        let dt = Double(nowNanos() - t0) / 1e6
        close(fds[0])
        if n > 0 { startMs.append(dt) }
        if i < 5 {   // idle RSS: let it settle, then read VmRSS
            usleep(300_000)
            rssMB.append(readRSSKiB(pid) / 1024)
        }
        kill(pid, SIGTERM)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
    }
    let trueMs = median((0..<runs).map { _ -> Double in spawnAndWaitMs("/bin/true") })
    var rows: [BenchRow] = []
    let m = median(startMs)
    rows.append(BenchRow(name: "odysseyd exec to ready (all first-party plugins)", unit: "ms", median: m,
                         p99: percentile(startMs, 99), bar: "<= 100 ms", passed: startMs.count == runs && m <= 100,
                         baseline: "posix_spawn+wait /bin/true \(fmt(trueMs)) ms"))
    let sleepRSS: Double = {
        let p = Process(); p.executableURL = URL(fileURLWithPath: "/bin/sleep"); p.arguments = ["5"]
        try? p.run(); usleep(100_000)
        let v = readRSSKiB(p.processIdentifier) / 1024; p.terminate(); p.waitUntilExit(); return v
    }()
    let r = median(rssMB)
    rows.append(BenchRow(name: "odysseyd idle resident memory", unit: "MB", median: r, bar: "<= 20 MB",
                         passed: r <= 20, baseline: "/bin/sleep \(fmt(sleepRSS)) MB"))
    return rows
}

/// posix_spawn + waitpid of a program: what any exec-to-ready pays at least.
func spawnAndWaitMs(_ exe: String, _ args: [String] = []) -> Double {
    var cargs: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
    defer { for c in cargs { free(c) } }
    var pid: pid_t = 0
    let t0 = nowNanos()
    guard posix_spawn(&pid, exe, nil, nil, &cargs, environ) == 0 else { return .nan }
    var st: Int32 = 0
    waitpid(pid, &st, 0)
    return Double(nowNanos() - t0) / 1e6
}

func readRSSKiB(_ pid: pid_t) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return .nan }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ").dropFirst().first ?? "") ?? .nan
    }
    return .nan
}
