// Issue 6 bars, against a real odysseyd process with 100 domains, over the
// admin socket as any client sees it: admin.vm.List and admin.vm.property.Get
// medians, requests per second from 8 concurrent clients, and admin.Events
// delivery to 20 subscribers while 1,000 changes per second are made.
// Baseline: a raw connect + write + read round trip of a method that does no
// work (admin.vmclass.List), measured in the same run.
import Foundation
import Host
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

func adminBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    guard let d = BenchDaemon(env, name: "admin") else {
        return [BenchRow(name: "admin API (daemon did not start)", unit: "ms", median: .nan, bar: "-", passed: false)]
    }
    defer { d.stop() }
    let client = AdminClient(socketPath: d.socket)
    func call(_ m: String, _ arg: String = "", dest: String = "dom0", payload: String = "") -> Bool {
        (try? client.call(AdminRequest(method: m, argument: arg, dest: dest, payload: Array(payload.utf8)))) != nil
    }

    // 100 domains: a template (empty root) and 99 AppVMs.
    let rootfs = d.dir + "/rootfs"
    try? FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
    guard call("admin.odyssey.template.Create", "from-rootfs", payload: "name=tpl label=black\nsource=\(rootfs)") else {
        return [BenchRow(name: "admin API (could not create the template)", unit: "ms", median: .nan, bar: "-", passed: false)]
    }
    for i in 1..<100 { _ = call("admin.vm.Create.AppVM", "tpl", payload: "name=w\(i) label=blue") }

    /// One raw request over a fresh connection; seconds.
    let socket = d.socket
    @Sendable func roundTrip(_ req: [UInt8]) -> Double {
        let t0 = nowNanos()
        guard let fd = try? UnixSocket.connect(path: socket) else { return .nan }
        defer { close(fd) }
        _ = try? Sys.writeAll(fd, req, what: "bench")
        shutdown(fd, Int32(SHUT_WR))
        var buf = [UInt8](repeating: 0, count: 65536)
        while read(fd, &buf, buf.count) > 0 {}
        return Double(nowNanos() - t0) / 1e9
    }
    let trivial = AdminRequest(method: "admin.vmclass.List").encoded()
    let base = sample(runs: 2000, warmup: 50) { _ = roundTrip(trivial) }
    let baseMs = median(base) * 1000
    let baseText = "raw round trip, admin.vmclass.List \(fmt(baseMs)) ms"

    var rows: [BenchRow] = []
    let list = AdminRequest(method: "admin.vm.List").encoded()
    let listS = sample(runs: 1000, warmup: 20) { _ = roundTrip(list) }
    let listMs = median(listS) * 1000
    rows.append(BenchRow(name: "admin.vm.List, 100 domains", unit: "ms", median: listMs, p99: percentile(listS, 99) * 1000,
                         bar: "<= 2 ms", passed: listMs <= 2, baseline: baseText, ratio: String(format: "%.1fx", listMs / baseMs)))
    let get = AdminRequest(method: "admin.vm.property.Get", argument: "memory", dest: "w50").encoded()
    let getS = sample(runs: 2000, warmup: 50) { _ = roundTrip(get) }
    let getMs = median(getS) * 1000
    rows.append(BenchRow(name: "admin.vm.property.Get, 100 domains", unit: "ms", median: getMs, p99: percentile(getS, 99) * 1000,
                         bar: "<= 0.3 ms", passed: getMs <= 0.3, baseline: baseText, ratio: String(format: "%.1fx", getMs / baseMs)))

    // Throughput: 8 clients, each one request per connection, for 2 s.
    let done = Atomic<Int>(0), failed = Atomic<Int>(0)
    let stopAt = nowNanos() + 2_000_000_000
    let group = DispatchGroup()
    let t0 = nowNanos()
    for c in 0..<8 {
        group.enter()
        Thread.detachNewThread {
            let req = AdminRequest(method: "admin.vm.property.Get", argument: "memory", dest: "w\(c * 10 + 1)").encoded()
            while nowNanos() < stopAt {
                if roundTrip(req).isNaN { failed.add(1, ordering: .relaxed) } else { done.add(1, ordering: .relaxed) }
            }
            group.leave()
        }
    }
    group.wait()
    let rps = Double(done.load(ordering: .relaxed)) / (Double(nowNanos() - t0) / 1e9)
    rows.append(BenchRow(name: "admin requests/s, 8 concurrent clients", unit: "req/s", median: rps, bar: ">= 3000 req/s",
                         passed: rps >= 3000 && failed.load(ordering: .relaxed) == 0,
                         baseline: "1 client serial: \(Int(1 / median(getS))) req/s"))
    rows.append(eventBenchmark(d, client: client))
    return rows
}

/// 20 admin.Events subscribers; two writers make 2,000 property changes in
/// all, paced at 1,000 per second together (each change is a committed,
/// fsynced store write). Passes if the pace is kept and every subscriber
/// receives every change; reports the delivery lag (set -> received).
private func eventBenchmark(_ d: BenchDaemon, client: AdminClient) -> BenchRow {
    let subscribers = 20, changes = 2000, writers = 2
    let sendTimes = Mutex<[UInt64]>([UInt64](repeating: 0, count: changes))
    let lags = Mutex<[Double]>([])
    let received = Atomic<Int>(0), connected = Atomic<Int>(0)
    let group = DispatchGroup()
    for _ in 0..<subscribers {
        group.enter()
        Thread.detachNewThread {
            var got = 0
            var mine: [Double] = []
            try? client.events { e in
                if e.name == "connection-established" { connected.add(1, ordering: .relaxed); return true }
                guard e.name == "property-set:memory", e.subject == "w7" || e.subject == "w8",
                      let v = e.arguments["newvalue"].flatMap(Int.init), v >= 1000, v - 1000 < changes else { return true }
                let now = nowNanos()
                let sent = sendTimes.withLock { $0[v - 1000] }
                mine.append(Double(now &- sent) / 1e6)
                got += 1
                return got < changes
            }
            received.add(got, ordering: .relaxed)
            lags.withLock { $0 += mine }
            group.leave()
        }
    }
    while connected.load(ordering: .relaxed) < subscribers { usleep(1000) }
    let start = nowNanos()
    let writing = DispatchGroup()
    for w in 0..<writers {
        writing.enter()
        Thread.detachNewThread {
            for i in stride(from: w, to: changes, by: writers) {
                let due = start + UInt64(i) * 1_000_000   // change i at i ms
                let now = nowNanos()
                if now < due { usleep(UInt32((due - now) / 1000)) }
                sendTimes.withLock { $0[i] = nowNanos() }
                _ = try? client.call(AdminRequest(method: "admin.vm.property.Set", argument: "memory", dest: w == 0 ? "w7" : "w8",
                                                  payload: Array(String(1000 + i).utf8)))
            }
            writing.leave()
        }
    }
    writing.wait()
    let rate = Double(changes) / (Double(nowNanos() - start) / 1e9)
    let finished = group.wait(timeout: .now() + 10) == .success
    let all = lags.withLock { $0 }
    let total = received.load(ordering: .relaxed)
    let ok = finished && total == subscribers * changes && rate >= 950
    return BenchRow(name: "admin.Events: 20 subscribers, 1,000 changes/s (lag)", unit: "ms", median: median(all),
                    p99: percentile(all, 99), bar: "all, >= 1000/s", passed: ok,
                    baseline: "\(writers) writers \(Int(rate)) changes/s; delivered \(total)/\(subscribers * changes)")
}
