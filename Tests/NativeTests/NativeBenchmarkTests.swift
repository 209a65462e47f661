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
