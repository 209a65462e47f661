// Timings of vmm-native against the bars (start to agent ready
// <= 40 ms, shutdown --wait <= 20 ms). Opt-in: ODY_NATIVE_BENCH=1, ideally
// on a release build (swift build -c release --build-tests). Prints medians.
import Foundation
import PluginABI
import XCTest

final class NativeBenchmarkTests: NativeTestCase {
    func testStartAndShutdownMedians() throws {
        guard ProcessInfo.processInfo.environment["ODY_NATIVE_BENCH"] != nil else {
            throw XCTSkip("set ODY_NATIVE_BENCH=1 to run the timing benchmark")
        }
        let runs = Int(ProcessInfo.processInfo.environment["ODY_NATIVE_BENCH_RUNS"] ?? "") ?? 20
        let fifo = try makeGate("bench", "up")
        // init's first action: one line into a FIFO the host reads.
        _ = try vmm.define("bench", params: params("bench", "trap 'exit 0' TERM; echo up > /rw/up; while :; do sleep 100 & wait; done"))
        let fd = open(fifo, O_RDWR) // never EOF, blocking reads
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        func now() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6 }
        var startReturn: [Double] = [], initUp: [Double] = [], shutdown: [Double] = []
        var buf = [UInt8](repeating: 0, count: 16)
        for i in 0..<(runs + 3) {
            let t0 = now()
            try vmm.start("bench")
            let t1 = now()
            XCTAssertEqual(read(fd, &buf, buf.count), 3)
            let t2 = now()
            try vmm.shutdown("bench", wait: true)
            let t3 = now()
            if i >= 3 { startReturn.append(t1 - t0); initUp.append(t2 - t0); shutdown.append(t3 - t2) }
        }
        func median(_ a: [Double]) -> Double { let s = a.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        func fmt(_ x: Double) -> String { String(format: "%.2f ms", x) }
        print("vmm-native bench (\(runs) runs, median): start() returns \(fmt(median(startReturn))), "
              + "init's first write seen \(fmt(median(initUp))), shutdown --wait \(fmt(median(shutdown))); "
              + "min/max init up \(fmt(initUp.min()!))/\(fmt(initUp.max()!)), shutdown \(fmt(shutdown.min()!))/\(fmt(shutdown.max()!))")
    }
}

final class NativeScaleBenchmarkTests: NativeTestCase {
    /// 100 domains at once (ODY_NATIVE_BENCH=1): time to start them all, the
    /// host process's RSS growth, and each domain's own memory (its cgroup).
    func testHundredDomains() throws {
        guard ProcessInfo.processInfo.environment["ODY_NATIVE_BENCH"] != nil else {
            throw XCTSkip("set ODY_NATIVE_BENCH=1 to run the 100-domain benchmark")
        }
        func rssKiB() -> Int {
            let s = Fixtures.read("/proc/self/status") ?? ""
            return Int(s.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ")[1] ?? "") ?? 0
        }
        let names = (0..<100).map { "d\($0)" }
        for n in names { try vmm.define(n, params: params(n, "trap 'exit 0' TERM; while :; do sleep 1000 & wait; done")) }
        let rss0 = rssKiB()
        let t0 = Date()
        var each: [Double] = []
        for n in names { let t = Date(); try vmm.start(n); each.append(Date().timeIntervalSince(t) * 1000) }
        print("starts (ms): first \(each.prefix(5).map { Int($0) }) last \(each.suffix(5).map { Int($0) })")
        let startAll = Date().timeIntervalSince(t0)
        let rss1 = rssKiB()
        var domainKiB: [UInt64] = []
        for n in names {
            let i = try vmm.info(n)
            XCTAssertEqual(i.state, ODY_STATE_RUNNING.rawValue)
            domainKiB.append(i.memory_kib)
        }
        let t1 = Date()
        for n in names { try vmm.shutdown(n, wait: true) }
        let stopAll = Date().timeIntervalSince(t1)
        let sorted = domainKiB.sorted()
        print(String(format: "vmm-native 100 domains: start all %.0f ms (%.1f ms each), shutdown --wait all %.0f ms; host RSS +%d KiB (%.1f KiB/domain); domain cgroup memory median %d KiB (max %d)",
                     startAll * 1000, startAll * 10, stopAll * 1000, rss1 - rss0, Double(rss1 - rss0) / 100,
                     Int(sorted[50]), Int(sorted.last!)))
        for n in names { XCTAssertEqual(Fixtures.cgroupDirs(parent: cgParent, name: n), []) }
    }
}
