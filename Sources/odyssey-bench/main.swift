// odyssey-bench [GROUP...]: `make bench` prints one table of every bar, each
// beside a baseline measured in the same run. Exits 1 if a bar is missed.
// Groups: host policy admin domains broker addons hostile vm (default: all),
// vm-run (the VM group's `ody run` bar alone), and xen, which runs only when
// named: in dom0 under Xen (`make bench-xen`).
import Foundation

let args = CommandLine.arguments
if args.count == 3 && args[1] == "--load-once" { loadOnce(args[2]) }
if args.count == 3 && args[1] == "--dlopen-once" { dlopenOnce(args[2]) }

let env = BenchEnv.fromEnvironment()
let groups: [(String, (BenchEnv) -> [BenchRow])] = [
    ("host", hostBenchmarks),
    ("policy", { _ in policyBenchmarks() }),
    ("admin", adminBenchmarks),
    ("domains", domainBenchmarks),
    ("broker", brokerBenchmarks),
    ("addons", addonBenchmarks),
    ("hostile", hostileBenchmarks),
    ("vm", { vmBenchmarks($0) }),
    ("vm-run", { vmBenchmarks($0, runBarOnly: true) }),
    ("xen", xenVchanBenchmarks),
]
let wanted = Set(args.dropFirst())
if let unknown = wanted.first(where: { w in !groups.contains { $0.0 == w } }) {
    print("odyssey-bench: unknown group '\(unknown)'; groups: \(groups.map(\.0).joined(separator: " "))")
    exit(2)
}
var rows: [BenchRow] = []
print("Odyssey benchmarks (medians; baselines measured in this run)\n")
for (name, run) in groups where wanted.isEmpty ? name != "xen" && name != "vm-run" : wanted.contains(name) { rows += run(env) }
let ok = printTable(rows)
try? FileManager.default.removeItem(atPath: env.scratch)
exit(ok ? 0 : 1)
