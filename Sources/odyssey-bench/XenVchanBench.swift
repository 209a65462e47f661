// The vchan-xen bars (issue 13), run in dom0 under Xen (`make bench-xen`
// boots the Xen tier and runs `odyssey-bench xen` there):
//   1,000 round trips of 64 B   at most 1.2x raw libxenvchan
//   bulk throughput (64 MiB)    at least 0.8x raw libxenvchan
// The baseline is Plugins/vchan-xen/Baseline/xen-vchan-baseline.c measuring
// as the server; the plugin's figure is vchan-xen measuring as the server
// (loaded through the host's Backends, as odysseyd loads it). The peer, dom0
// itself (Xen lets a domain grant to itself), is the same C program in both:
// only the measuring end differs. Runs alternate, medians of `rounds`.
import Foundation
import Host
import Logging

func xenVchanBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    func failed(_ why: String) -> [BenchRow] {
        [BenchRow(name: "vchan-xen: \(why)", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    guard access("/dev/xen/evtchn", F_OK) == 0 else {
        return failed("Xen is not running here (no /dev/xen/evtchn): run `make bench-xen`, which boots the Xen tier")
    }
    let baseline = ProcessInfo.processInfo.environment["ODYSSEY_XEN_VCHAN_BASELINE"] ?? env.buildDir + "/xen-vchan-baseline"
    guard FileManager.default.isExecutableFile(atPath: baseline) else {
        return failed("\(baseline) missing (make bench-xen builds it with cc)")
    }
    let bench: XenVchanBench
    do { bench = try XenVchanBench(env, baseline: baseline) } catch { return failed("cannot open vchan-xen: \(error)") }
    defer { bench.close() }

    let rounds = 5, count = 1000, size = 64, bulkBytes = 64 << 20
    var rawRtt: [Double] = [], pluginRtt: [Double] = [], rawBulk: [Double] = [], pluginBulk: [Double] = []
    var port: UInt32 = 7000
    do {
        for _ in 0..<rounds {
            port += 1; rawRtt.append(try bench.rawRoundTrip(port: port, size: size, count: count))
            port += 1; pluginRtt.append(try bench.pluginRoundTrip(port: port, size: size, count: count))
            port += 1; rawBulk.append(try bench.rawBulk(port: port, bytes: bulkBytes))
            port += 1; pluginBulk.append(try bench.pluginBulk(port: port, bytes: bulkBytes))
        }
    } catch { return failed("\(error)") }
    let rtt = median(pluginRtt), rawR = median(rawRtt)
    let bulk = median(pluginBulk), rawB = median(rawBulk)
    print("vchan-xen under Xen: \(count) x \(size) B round trips \(fmt(rtt * 1e3)) ms vs raw libxenvchan \(fmt(rawR * 1e3)) ms "
          + "(\(String(format: "%.2f", rtt / rawR))x); bulk \(fmt(bulk)) MB/s vs raw \(fmt(rawB)) MB/s (\(String(format: "%.2f", bulk / rawB))x)")
    return [
        BenchRow(name: "vchan-xen \(count) x \(size) B round trips (dom0<->dom0, \(rounds) runs)", unit: "ms", median: rtt * 1e3,
                 p99: (pluginRtt.max() ?? .nan) * 1e3, bar: "<= 1.2x raw", passed: rtt <= 1.2 * rawR,
                 baseline: "raw libxenvchan \(fmt(rawR * 1e3)) ms", ratio: String(format: "%.2fx", rtt / rawR)),
        BenchRow(name: "vchan-xen bulk \(bulkBytes >> 20) MiB one way (64 KiB rings, \(rounds) runs)", unit: "MB/s", median: bulk,
                 bar: ">= 0.8x raw", passed: bulk >= 0.8 * rawB,
                 baseline: "raw libxenvchan \(fmt(rawB)) MB/s", ratio: String(format: "%.2fx", bulk / rawB)),
    ]
}

private final class XenVchanBench {
    let dir: String
    let backends: Backends
    let vchan: VchanBackend
    let baseline: String
    static let ring = 65536

    init(_ env: BenchEnv, baseline: String) throws {
        self.baseline = baseline
        let fm = FileManager.default
        dir = "/tmp/obx-\(getpid())"
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        var lib = env.pluginDir + "/libvchan-xen.so"
        if !fm.fileExists(atPath: lib) { lib = env.buildDir + "/libvchan-xen.so" }
        try fm.copyItem(atPath: lib, toPath: plugins + "/libvchan-xen.so")
        try fm.copyItem(atPath: env.repoRoot + "/Plugins/vchan-xen/vchan-xen.json", toPath: plugins + "/vchan-xen.json")
        let cfg = """
        plugin_dirs = ["\(plugins)"]
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/admin.sock"
        [vchan]
        default = "xen"
        [vchan.xen]
        connect_timeout_ms = 30000
        """
        let config = try OdysseyConfig.parse(cfg, path: dir + "/odyssey.toml")
        backends = Backends.load(config: config, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
                                 events: EventBus())
        vchan = try backends.vchan()
    }

    func close() { try? FileManager.default.removeItem(atPath: dir) }

    /// Runs the baseline as the measuring server; the figure from its one line of output.
    private func runBaseline(_ args: [String], figure: String) throws -> Double {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: baseline)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // "... 2289.0 us per round trip": the number just before `figure`.
        guard p.terminationStatus == 0, let line = text.split(separator: "\n").first(where: { $0.hasSuffix(figure) }),
              let value = line.dropLast(figure.count).split(separator: " ").last.flatMap({ Double($0) }) else {
            throw BenchFailure("xen-vchan-baseline \(args.joined(separator: " ")) failed (status \(p.terminationStatus)): \(text)")
        }
        return value
    }

    /// The same program as the peer (echo or sink) of a vchan-xen server.
    private func peer(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: baseline)
        p.arguments = args
        try p.run()
        return p
    }

    private func serve(port: UInt32) throws -> VchanChannel {
        let ch = try vchan.serverInit(VchanEndpoint(local: "dom0", remote: "dom0-peer", port: port, localDomid: 0, remoteDomid: 0),
                                      readMin: Self.ring, writeMin: Self.ring)
        while try ch.state() == .waiting { try ch.wait() }
        return ch
    }

    private func finish(_ p: Process, _ what: String) throws {
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw BenchFailure("the \(what) peer exited \(p.terminationStatus)") }
    }

    /// Seconds for `count` round trips (after 10 warm-up ones).
    func rawRoundTrip(port: UInt32, size: Int, count: Int) throws -> Double {
        try runBaseline(["rtt", "0", "\(port)", "\(size)", "\(count)"], figure: "us per round trip") * Double(count) / 1e6
    }

    func pluginRoundTrip(port: UInt32, size: Int, count: Int) throws -> Double {
        let p = try peer(["echo", "0", "\(port)", "\(size)", "\(count)"])
        let ch = try serve(port: port)
        var buf = [UInt8](repeating: 0, count: size)
        func exchange(_ n: Int) throws {
            for _ in 0..<n {
                try buf.withUnsafeBytes { try ch.send($0) }
                try buf.withUnsafeMutableBytes { try ch.recv($0) }
            }
        }
        try exchange(10)
        let t0 = nowNanos()
        try exchange(count)
        let dt = Double(nowNanos() - t0) / 1e9
        ch.close()
        try finish(p, "echo")
        return dt
    }

    /// MB/s for `bytes` one way, until the peer's 1-byte acknowledgement.
    func rawBulk(port: UInt32, bytes: Int) throws -> Double {
        try runBaseline(["bulk", "0", "\(port)", "\(bytes)"], figure: "MB/s")
    }

    func pluginBulk(port: UInt32, bytes: Int) throws -> Double {
        let p = try peer(["sink", "0", "\(port)", "\(bytes)"])
        let ch = try serve(port: port)
        let chunk = [UInt8](repeating: 0x5A, count: Self.ring)
        let t0 = nowNanos()
        var pos = 0
        while pos < bytes {
            let n = min(chunk.count, bytes - pos)
            pos += try chunk.withUnsafeBytes { try ch.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        var ack = [UInt8](repeating: 0, count: 1)
        try ack.withUnsafeMutableBytes { try ch.recv($0) }
        let dt = Double(nowNanos() - t0) / 1e9
        ch.close()
        try finish(p, "sink")
        return Double(bytes) / dt / 1e6
    }
}

private struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
