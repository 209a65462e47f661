// odyssey-bench: `make bench` prints one table of every bar, each beside a
// baseline measured in the same run. Exits 1 if a bar is missed.
import Foundation

let args = CommandLine.arguments
if args.count == 3 && args[1] == "--load-once" { loadOnce(args[2]) }
if args.count == 3 && args[1] == "--dlopen-once" { dlopenOnce(args[2]) }

let env = BenchEnv.fromEnvironment()
defer { try? FileManager.default.removeItem(atPath: env.scratch) }
var rows: [BenchRow] = []
print("Odyssey benchmarks (medians; baselines measured in this run)\n")
rows += hostBenchmarks(env)
rows += policyBenchmarks()
rows += adminBenchmarks(env)
rows += domainBenchmarks(env)
let ok = printTable(rows)
try? FileManager.default.removeItem(atPath: env.scratch)
exit(ok ? 0 : 1)
