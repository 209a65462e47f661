// Issue 11 bar: one hostile domain does not slow the host down for the
// others. Under a fork bomb, a memory bomb and a disposable flood started by
// a domain's unprivileged user, `ody ls` and a qrexec call between two other
// domains keep a median of at most 3x the same on the idle host, measured in
// this run.
import FoundationEssentials
import Host
#if canImport(Glibc)
import Glibc
#endif

func hostileBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    func failed(_ why: String) -> [BenchRow] {
        [BenchRow(name: "hostile domain: \(why)", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    guard geteuid() == 0 else { return failed("needs root (native domains); run make bench as root") }
    let rpc = "domain_rpc_dir = \"\(env.repoRoot)/config/domain-rpc\"\nrpc_dirs = [\"\(env.repoRoot)/config/qubes-rpc\"]"
    guard let d = BenchDaemon(env, name: "hostile", topConfig: rpc), let rootfs = busyboxRootfs(env.scratch + "/hostile") else {
        return failed("odysseyd did not start")
    }
    defer { d.stop() }
    let policy = """
    qubes.VMShell  *  a         b         allow
    qubes.VMShell  *  attacker  @dispvm   allow

    """
    guard (try? policy.write(toFile: d.dir + "/state/policy.d/30-bench.policy", atomically: true, encoding: .utf8)) != nil
    else { return failed("cannot write the bench policy") }
    let setup: [[String]] = [
        ["template", "create", "tpl", "--from-rootfs", rootfs],
        ["create", "a", "--template", "tpl", "--label", "blue"],
        ["create", "b", "--template", "tpl", "--label", "green"],
        ["create", "attacker", "--template", "tpl", "--label", "red"],
        ["create", "dvm", "--template", "tpl", "--label", "red", "--prop", "template_for_dispvms=True"],
        ["prefs", "attacker", "default_dispvm", "dvm"],
        ["start", "a", "b", "attacker"],
    ]
    for step in setup where d.ody(step).0 != 0 {
        return failed("set-up `ody \(step.joined(separator: " "))` failed: \(d.errorTail)")
    }

    /// The two things measured: the Admin API, and a qrexec call a -> b.
    func measure() -> (ls: [Double], call: [Double], lsErrors: Int, callErrors: Int) {
        var ls: [Double] = [], call: [Double] = [], lsErrors = 0, callErrors = 0
        for _ in 0..<15 {
            let (s1, t1) = d.ody(["ls"])
            if s1 == 0 { ls.append(t1) } else { lsErrors += 1 }
            let (s2, t2) = d.ody(["run", "a", "-p", "--", "echo true | ody-call b qubes.VMShell"])
            if s2 == 0 { call.append(t2) } else { callErrors += 1 }
        }
        return (ls, call, lsErrors, callErrors)
    }
    let idle = measure()
    guard idle.lsErrors == 0, idle.callErrors == 0 else { return failed("idle measurement failed: \(d.errorTail)") }
    let lsIdle = median(idle.ls), callIdle = median(idle.call)
    var rows: [BenchRow] = []
    let attacks: [(String, String)] = [
        ("fork bomb", "f() { f | f & }; f"),
        // Each shell doubles a string until its domain's memory limit
        // kills it; two at a time, restarted for ever.
        ("memory bomb", "for i in 1 2; do (while :; do sh -c 'x=0123456789abcdef; while :; do x=$x$x; done'; done) & done; wait"),
        ("disposable flood", "i=0; while [ $i -lt 48 ]; do (echo 'sleep 60' | ody-call @dispvm qubes.VMShell) & i=$((i+1)); done; wait"),
    ]
    for (name, script) in attacks {
        _ = d.ody(["run", "attacker", "--", script])   // detached, as the domain's user
        usleep(1_500_000)                               // let it take what it can
        let m = measure()
        let ls = median(m.ls), call = median(m.call)
        rows.append(BenchRow(name: "ody ls under a \(name) in another domain", unit: "ms", median: ls, p99: percentile(m.ls, 99),
                             bar: "<= 3x idle", passed: m.lsErrors == 0 && ls <= 3 * lsIdle,
                             baseline: "idle \(fmt(lsIdle)) ms", ratio: String(format: "%.2fx", ls / lsIdle)))
        rows.append(BenchRow(name: "qrexec call a -> b under a \(name)", unit: "ms", median: call, p99: percentile(m.call, 99),
                             bar: "<= 3x idle", passed: m.callErrors == 0 && call <= 3 * callIdle,
                             baseline: "idle \(fmt(callIdle)) ms", ratio: String(format: "%.2fx", call / callIdle) + (m.callErrors == 0 ? "" : ", \(m.callErrors) failed")))
        // The attacker (and its disposables) go; the next attack starts clean.
        _ = d.ody(["kill", "attacker"])
        _ = d.ody(["start", "attacker"])
    }
    return rows
}
