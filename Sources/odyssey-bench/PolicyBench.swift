// Policy engine rows of `make bench` (issue 3): decisions per rule count with the service index
// on and off, ask collection, and parsing. Baselines are the reference (Python) numbers quoted in
// the issue, plus the same engine with its index off, measured in the same run.
// Until the bench target depends on `Policy`, this file compiles to an empty row list.
#if canImport(Policy)
import Policy

/// Rules `svcI +argK @tag:tJ vmM allow` (100 per service) and a final `* * @anyvm @anyvm ask`;
/// 100 domains; every request matches late (the last rule of its service, in the last services
/// of the file). Per-decision numbers time 1,000 decisions per run and divide.
func policyBenchmarks() -> [BenchRow] {
    let rulesPerService = 100
    let decisionsPerRun = 1_000
    let runs = 25

    // dom0 + vm0...vm98; vmX carries tag tX%10; vm90...vm94 are disposable templates.
    var domains = [PolicyDomain(name: "dom0", type: "AdminVM", powerState: "Running",
                                uuid: "00000000-0000-0000-0000-000000000000")]
    for number in 0..<99 {
        domains.append(PolicyDomain(name: "vm\(number)", tags: ["t\(number % 10)"],
                                    templateForDispvms: (90...94).contains(number), defaultDispvm: "vm90",
                                    powerState: "Running", uuid: "00000000-0000-0000-0001-\(100_000_000_000 + number)"))
    }
    let system = PolicySystem(domains: domains)

    /// Rule r of service s: argument +arg(r/10), source tag t(r%10), target vm((s+r)%99).
    func targetNumber(service: Int, rule: Int) -> Int { (service + rule) % 99 }

    func policyText(rules: Int) -> String {
        var lines: [String] = []
        lines.reserveCapacity(rules + 1)
        for index in 0..<rules {
            let service = index / rulesPerService, rule = index % rulesPerService
            let target = targetNumber(service: service, rule: rule)
            lines.append("svc\(service) +arg\(rule / 10) @tag:t\(rule % 10) vm\(target) allow")
        }
        lines.append("* * @anyvm @anyvm ask")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A source tagged t9 that is not `avoid` (no loopback).
    func sourceTaggedNine(avoiding avoid: Int) -> String { avoid == 9 ? "vm19" : "vm9" }

    /// Requests matching the last rule of one of the last three services (allow), or, for
    /// `ask`, a target no rule of the service names, so they fall through to the final ask.
    func requests(rules: Int, ask: Bool) -> [PolicyRequest] {
        let services = rules / rulesPerService
        return (0..<decisionsPerRun).map { index in
            let service = services - 1 - index % min(3, services)
            let matched = targetNumber(service: service, rule: rulesPerService - 1)
            let target = ask ? (matched + 50) % 99 : matched
            return PolicyRequest(service: "svc\(service)", argument: "+arg9",
                                 source: sourceTaggedNine(avoiding: target), target: "vm\(target)")
        }
    }

    var sink = 0
    /// Median and p99 per decision, in microseconds.
    func perDecision(_ policy: Policy, _ batch: [PolicyRequest], useIndex: Bool,
                     expect: Resolution) -> (median: Double, p99: Double) {
        var wrong = 0
        let seconds = sample(runs: runs) {
            for request in batch {
                let decision = policy.evaluate(request, in: system, useIndex: useIndex)
                if decision.resolution != expect { wrong += 1 }
                sink &+= decision.targetsForAsk.count
            }
        }
        if wrong > 0 { print("policy bench: \(wrong) decisions were not \(expect.rawValue)") }
        let scale = 1e6 / Double(batch.count)
        return (median(seconds) * scale, percentile(seconds, 99) * scale)
    }

    func load(_ text: String) -> Policy {
        (try? Policy.parse(text, path: "/bench/50-bench.policy")) ?? Policy.denyAll
    }

    var rows: [BenchRow] = []
    for (rules, label, bar) in [(1_000, "1,000", 4.0), (10_000, "10,000", 20.0)] {
        let policy = load(policyText(rules: rules))
        let allowBatch = requests(rules: rules, ask: false)
        let indexed = perDecision(policy, allowBatch, useIndex: true, expect: .allow)
        let scanned = perDecision(policy, allowBatch, useIndex: false, expect: .allow)
        let reference = rules == 1_000 ? 400.0 : 2_900.0
        rows.append(BenchRow(
            name: "policy decision, \(label) rules, indexed", unit: "us", median: indexed.median, p99: indexed.p99,
            bar: "<= \(Int(bar)) us", passed: indexed.median <= bar,
            baseline: "reference (Python) \(Int(reference)) us; plain scan \(fmt(scanned.median)) us",
            ratio: "\(Int(reference / indexed.median))x faster than reference"))
        rows.append(BenchRow(
            name: "policy decision, \(label) rules, index off (scan)", unit: "us", median: scanned.median,
            p99: scanned.p99, bar: "(comparison)", passed: true,
            baseline: "indexed \(fmt(indexed.median)) us",
            ratio: "index is \(fmt(scanned.median / indexed.median))x faster"))
        if rules == 10_000 {
            let askBatch = requests(rules: rules, ask: true)
            let ask = perDecision(policy, askBatch, useIndex: true, expect: .ask)
            let askScan = perDecision(policy, askBatch, useIndex: false, expect: .ask)
            rows.append(BenchRow(
                name: "policy ask + collection, \(label) rules, indexed", unit: "us", median: ask.median,
                p99: ask.p99, bar: "<= 20 us", passed: ask.median <= 20,
                baseline: "reference (Python) 2900 us; plain scan \(fmt(askScan.median)) us",
                ratio: "\(Int(reference / ask.median))x faster than reference"))
        }
    }

    let text = policyText(rules: 10_000)
    var parsedRules = 0
    let parseSeconds = sample(runs: 21, warmup: 1) { parsedRules = load(text).ruleCount }
    let parseMs = median(parseSeconds) * 1e3
    rows.append(BenchRow(
        name: "policy parse + index, 10,000 rules", unit: "ms", median: parseMs,
        p99: percentile(parseSeconds, 99) * 1e3, bar: "<= 40 ms", passed: parseMs <= 40 && parsedRules == 10_001,
        baseline: "reference (Python) 402 ms", ratio: "\(Int(402 / parseMs))x faster than reference"))
    if sink == Int.min { print(sink) }  // keeps the decisions observable to the optimizer
    return rows
}
#else
func policyBenchmarks() -> [BenchRow] { [] }
#endif
