// The table `make bench` prints: every bar next to a baseline measured in the same run.
#if canImport(Glibc)
import Glibc
#endif

/// One measured line: a median (and p99 when useful) against its bar and baseline.
public struct BenchRow {
    public var name: String
    public var unit: String          // "us", "ms", "MB", "req/s"...
    public var median: Double
    public var p99: Double?
    public var bar: String           // "<= 4 us", ">= 3000 req/s"
    public var passed: Bool
    public var baseline: String      // what we compared against, and its number
    public var ratio: String         // e.g. "0.04x baseline" or ""

    public init(name: String, unit: String, median: Double, p99: Double? = nil, bar: String, passed: Bool,
                baseline: String = "", ratio: String = "") {
        self.name = name; self.unit = unit; self.median = median; self.p99 = p99
        self.bar = bar; self.passed = passed; self.baseline = baseline; self.ratio = ratio
    }
}

/// Monotonic clock in nanoseconds.
public func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Runs `body` `runs` times (after `warmup` runs) and returns per-run seconds, sorted.
public func sample(runs: Int, warmup: Int = 2, _ body: () throws -> Void) rethrows -> [Double] {
    for _ in 0..<warmup { try body() }
    var out: [Double] = []
    out.reserveCapacity(runs)
    for _ in 0..<runs {
        let t0 = nowNanos()
        try body()
        out.append(Double(nowNanos() - t0) / 1e9)
    }
    return out.sorted()
}

public func median(_ sorted: [Double]) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let s = sorted.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

public func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    let idx = min(s.count - 1, Int((p / 100 * Double(s.count - 1)).rounded(.up)))
    return s[idx]
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

func fmt(_ v: Double) -> String {
    if v.isNaN { return "-" }
    if v >= 100 { return String(Int(v.rounded())) }
    let scaled = (v * 100).rounded() / 100
    return "\(scaled)"
}

/// Prints the table; returns false if any bar failed.
public func printTable(_ rows: [BenchRow]) -> Bool {
    let header = [pad("benchmark", 52), pad("median", 10), pad("p99", 10), pad("unit", 6),
                  pad("bar", 16), pad("ok", 4), "baseline (same run)"]
    print(header.joined(separator: " "))
    print(String(repeating: "-", count: 130))
    for r in rows {
        let cols = [pad(r.name, 52), pad(fmt(r.median), 10), pad(r.p99.map(fmt) ?? "-", 10), pad(r.unit, 6),
                    pad(r.bar, 16), pad(r.passed ? "yes" : "NO", 4),
                    r.baseline + (r.ratio.isEmpty ? "" : " (\(r.ratio))")]
        print(cols.joined(separator: " "))
    }
    return rows.allSatisfy(\.passed)
}
