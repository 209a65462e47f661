// Issue 12 bars: VM domains (libvirt/QEMU, TCG on this host) running the
// agent. Each bar beside a baseline measured in this run, with the same
// kernel, initrd and channel type:
//  1. `ody start VM` (to agent ready) <= 1.15x a plain libvirt boot of the
//     kit's kernel and initrd to a line on a virtio-serial port
//     (`scripts/guest-kit --baseline-boot`);
//  2. `ody run VM -p -- true` <= 1.5x one line's round trip through an open
//     qrexec data channel to the VM + the guest's own spawn of /bin/true;
//  3. `ody-copy` of 256 MiB native -> VM >= 0.7x the same bytes streamed
//     into a file in the VM through `ody run -p VM -- 'cat > file'`;
//  4. odysseyd's RSS per running VM domain <= 2 MB (QEMU's own beside it).
// Boots are ~10 s each under TCG, so few runs: the rows say how many.
import Foundation
import Host
#if canImport(Glibc)
import Glibc
#endif

func vmBenchmarks(_ env: BenchEnv) -> [BenchRow] {
    func failed(_ why: String) -> [BenchRow] {
        [BenchRow(name: "VM domains: \(why)", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    guard geteuid() == 0 else { return failed("need root (libvirtd, QEMU); run make bench as root") }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
        return failed("qemu-system-x86_64 is not installed (make vm-kit / scripts/install-deps)")
    }
    let pool = ProcessInfo.processInfo.environment["ODYSSEY_KERNEL_DIR"] ?? "/var/lib/odyssey/vm-kernels"
    guard FileManager.default.fileExists(atPath: pool + "/default/vmlinuz") else {
        return failed("no guest kernel in \(pool) (make vm-kit runs scripts/guest-kit)")
    }
    guard runTool(env.repoRoot + "/scripts/libvirtd-up", []).status == 0 else { return failed("scripts/libvirtd-up failed") }

    let top = """
    kernel_dir = "\(pool)"
    rpc_dirs = ["\(env.repoRoot)/config/qubes-rpc"]
    """
    let sections = """
    [vmm.libvirt]
    uri = "qemu:///system"
    owner = "bench-\(getpid())"
    [vchan.virtio-serial]
    """
    guard let d = BenchDaemon(env, name: "vm", topConfig: top, extraConfig: sections) else { return failed("odysseyd did not start") }
    // libvirt is shared on this machine: names unique to this run.
    let vms = ["bvm\(getpid())a", "bvm\(getpid())b"]
    defer {
        for vm in vms { d.ody(["kill", vm]); d.ody(["remove", vm]) }
        d.stop()
        for vm in vms {   // backstop: a VM outlives its daemon by design
            _ = runTool("/usr/bin/virsh", ["-c", "qemu:///system", "destroy", vm])
            _ = runTool("/usr/bin/virsh", ["-c", "qemu:///system", "undefine", vm])
        }
    }
    guard let rootfs = vmBenchRootfs(env.scratch + "/vm") else { return failed("cannot build the busybox template") }
    let policy = "qubes.Filecopy * @anyvm @anyvm allow\n"
    guard (try? policy.write(toFile: d.dir + "/state/policy.d/30-bench-vm.policy", atomically: true, encoding: .utf8)) != nil
    else { return failed("cannot write the bench policy") }
    let setup: [[String]] = [
        ["template", "create", "tpl", "--from-rootfs", rootfs],
        ["create", "nat", "--class", "AppVM", "--template", "tpl", "--label", "blue"],
        ["create", vms[0], "--class", "AppVM", "--template", "tpl", "--label", "red", "--prop", "vmm=libvirt"],
        ["create", vms[1], "--class", "AppVM", "--template", "tpl", "--label", "red", "--prop", "vmm=libvirt"],
        // Not timed: the first start also builds the template's root image.
        ["start", "nat", vms[0]],
    ]
    for step in setup where d.ody(step).0 != 0 {
        return failed("set-up `ody \(step.joined(separator: " "))` failed: \(d.errorTail)")
    }
    var rows: [BenchRow] = []
    rows += vmRunBar(d, vm: vms[0])
    rows += vmCopyBar(d, vm: vms[0], scratch: env.scratch)
    d.ody(["kill", vms[0]])
    rows += vmStartBar(d, vm: vms[0], repoRoot: env.repoRoot)
    rows += vmMemoryBar(d, vms: vms)
    if rows.contains(where: { !$0.passed }) {   // what the daemon said, for a bar that failed
        let log = (try? String(contentsOfFile: d.dir + "/odysseyd.log", encoding: .utf8)) ?? ""
        if !log.isEmpty { print("vm bench: odysseyd's log (warnings and errors), last lines:\n" + log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
    }
    return rows
}

// MARK: bar 1: start to agent ready vs a plain boot

func vmStartBar(_ d: BenchDaemon, vm: String, repoRoot: String) -> [BenchRow] {
    let runs = 3
    var starts: [Double] = [], boots: [Double] = [], errors: [String] = []
    var startUptimes: [Double] = [], bootUptimes: [Double] = []   // the guest's clock at the line / at ready
    // The baseline boots the same machine: the domain's vCPUs and the RAM its
    // VM gets (max of memory and maxmem, as vmm-libvirt gives it).
    func pref(_ p: String) -> Int? { Int(runOdy(d, ["prefs", vm, p]).output.trimmingCharacters(in: .whitespacesAndNewlines)) }
    guard let vcpus = pref("vcpus"), let memory = pref("memory"), let maxmem = pref("maxmem") else {
        return [BenchRow(name: "ody start VM: cannot read the domain's vcpus/memory/maxmem", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    let shape = ["--vcpus", "\(vcpus)", "--memory", "\(max(memory, maxmem))"]
    // Interleaved, so both see the same load on this shared machine.
    for _ in 0..<runs {
        let (s, t) = d.ody(["start", vm])
        // Counted only if the agent answers (a start that returned at once
        // because the daemon still thought the VM ran would be no start).
        // Its answer, the guest's uptime, splits the time into the guest's
        // boot and what the host did before QEMU ran the kernel.
        let up = s == 0 ? runOdy(d, ["run", vm, "-p", "--", "read u _ < /proc/uptime; echo $u"]) : (status: s, output: "")
        if s == 0, up.status == 0 {
            starts.append(t)
            if let u = Double(up.output.trimmingCharacters(in: .whitespacesAndNewlines)) { startUptimes.append(u * 1000) }
        } else {
            errors.append("ody start (status \(s), \(fmt(t)) ms), or a command after it, failed: \(d.errorTail) \(up.output.suffix(200))")
        }
        if d.ody(["kill", vm]).0 != 0 { errors.append("ody kill \(vm) failed: \(d.errorTail)") }
        let b = runTool(repoRoot + "/scripts/guest-kit", ["--baseline-boot"] + shape)
        if let (secs, uptime) = parseBaselineBoot(b.output) {
            boots.append(secs * 1000)
            if let u = uptime { bootUptimes.append(u * 1000) }
        } else {
            errors.append("baseline: \(b.output.suffix(300))")
        }
    }
    for e in errors { print("vm bench: \(e)") }
    let m = median(starts), base = median(boots)
    return [BenchRow(name: "ody start VM (to agent ready; \(starts.count)/\(runs) runs)", unit: "ms", median: m,
                     bar: "<= 1.15x boot", passed: starts.count == runs && boots.count == runs && m <= 1.15 * base,
                     baseline: "libvirt boot of the same kernel, initrd, \(vcpus) vCPUs and \(max(memory, maxmem)) MiB to a virtio-serial line \(fmt(base)) ms, \(boots.count) runs",
                     ratio: String(format: "%.2fx", m / base)),
            BenchRow(name: "  of which the guest's boot (its uptime at ready)", unit: "ms", median: median(startUptimes),
                     bar: "(breakdown)", passed: true,
                     baseline: "guest uptime at the baseline's line \(fmt(median(bootUptimes))) ms")]
}

/// `baseline-boot: 10.512 s (libvirt qemu, ...; guest uptime at the line: 4.95 s)`
/// -> (10.512, 4.95)
func parseBaselineBoot(_ output: String) -> (seconds: Double, guestUptime: Double?)? {
    let prefix = "baseline-boot: ", uptimeMark = "guest uptime at the line: "
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
          let secs = Double(line.dropFirst(prefix.count).prefix { $0 != " " }) else { return nil }
    let uptime = line.range(of: uptimeMark).flatMap { Double(line[$0.upperBound...].prefix { $0 != " " }) }
    return (secs, uptime)
}

// MARK: bar 2: a command into a running VM vs a channel round trip + the guest's spawn

func vmRunBar(_ d: BenchDaemon, vm: String) -> [BenchRow] {
    let runs = 21, rounds = 3
    for _ in 0..<2 { d.ody(["run", vm, "-p", "--", "true"]) }
    // Interleaved (a command, a line's round trip; the guest's spawn cost
    // once per round), so a change of load on this shared machine weighs on
    // the bar and its baseline alike.
    guard let echo = EchoSession(d, vm: vm) else {
        return [BenchRow(name: "ody run VM -p -- true: the echo session did not start", unit: "-", median: .nan, bar: "-", passed: false)]
    }
    var run: [Double] = [], rtt: [Double] = [], spawns: [Double] = []
    for i in 0..<runs {
        let (s, t) = d.ody(["run", vm, "-p", "--", "true"])
        if s == 0 { run.append(t) }
        if let e = echo.roundTrip() { rtt.append(e) }
        if i % (runs / rounds) == runs / rounds - 1 { let g = guestSpawnMs(d, vm: vm, repeats: 1); if !g.isNaN { spawns.append(g) } }
    }
    echo.close()
    let spawn = median(spawns)
    let base = median(rtt) + spawn
    let m = median(run)
    return [BenchRow(name: "ody run VM -p -- true (running VM)", unit: "ms", median: m, p99: percentile(run, 99),
                     bar: "<= 1.5x raw", passed: run.count == runs && rtt.count == runs && !spawn.isNaN && m <= 1.5 * base,
                     baseline: "echo round trip on an open channel \(fmt(median(rtt))) ms + guest spawn of /bin/true \(fmt(spawn)) ms (interleaved)",
                     ratio: String(format: "%.2fx", m / base))]
}

/// `ody run -p VM -- cat`, kept open: one line written and read back per
/// round trip (two untimed first).
final class EchoSession {
    let p: Process
    let w: Int32, r: Int32
    let input: Pipe, output: Pipe
    let line: [UInt8] = Array("odyssey-bench-echo\n".utf8)

    init?(_ d: BenchDaemon, vm: String) {
        p = odyProcess(d, ["run", "-p", vm, "--", "cat"])
        input = Pipe(); output = Pipe()
        p.standardInput = input; p.standardOutput = output
        w = input.fileHandleForWriting.fileDescriptor; r = output.fileHandleForReading.fileDescriptor
        guard (try? p.run()) != nil else { return nil }
        for _ in 0..<2 where roundTrip() == nil { return nil }
    }

    /// Milliseconds for one line there and back; nil on EOF or error.
    func roundTrip() -> Double? {
        let t0 = nowNanos()
        guard write(w, line, line.count) == line.count, readLine(r, bytes: line.count) else { return nil }
        return Double(nowNanos() - t0) / 1e6
    }

    func close() {
        try? input.fileHandleForWriting.close()
        p.waitUntilExit()
    }
}

/// Reads until the line's `bytes` bytes came back (false on EOF or error).
private func readLine(_ fd: Int32, bytes: Int) -> Bool {
    var got = 0
    var buf = [UInt8](repeating: 0, count: 256)
    while got < bytes {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { return false }
        got += n
    }
    return true
}

/// The guest's own cost of spawning /bin/true, measured inside the VM: 200
/// spawns minus the same loop without them, by /proc/uptime (centiseconds;
/// busybox date has no %N). Median of `repeats`.
func guestSpawnMs(_ d: BenchDaemon, vm: String, repeats: Int = 3) -> Double {
    let n = 200
    let script = """
    n=\(n); i=0; read a _ < /proc/uptime; while [ $i -lt $n ]; do /bin/true; i=$((i+1)); done
    read b _ < /proc/uptime; i=0; while [ $i -lt $n ]; do :; i=$((i+1)); done; read c _ < /proc/uptime
    a=${a%.*}${a#*.}; b=${b%.*}${b#*.}; c=${c%.*}${c#*.}; echo $(( (b - a) - (c - b) ))
    """
    var per: [Double] = []
    for _ in 0..<repeats {
        let out = runOdy(d, ["run", "-p", vm, "--", script])
        if out.status == 0, let cs = Double(out.output.trimmingCharacters(in: .whitespacesAndNewlines)) {
            per.append(cs * 10 / Double(n))
        } else {
            print("vm bench: guest spawn loop failed: \(out.output.suffix(300))")
        }
    }
    return median(per)
}

// MARK: bar 3: ody-copy native -> VM vs a raw stream into a file in the VM

func vmCopyBar(_ d: BenchDaemon, vm: String, scratch: String) -> [BenchRow] {
    let mib = 256, runs = 2
    let blob = scratch + "/vm-blob"
    func row(_ why: String) -> [BenchRow] {
        [BenchRow(name: "ody-copy \(mib) MiB native -> VM: \(why)", unit: "MB/s", median: .nan, bar: ">= 0.7x raw", passed: false)]
    }
    guard runTool("/bin/dd", ["if=/dev/urandom", "of=\(blob)", "bs=1M", "count=\(mib)"]).status == 0 else { return row("cannot write \(blob)") }
    defer { unlink(blob) }
    let sum = runTool("/usr/bin/sha256sum", [blob]).output.prefix { $0 != " " }
    // The same bytes into the native domain (its own channel, not timed).
    guard runOdy(d, ["run", "-p", "-u", "user", "nat", "--", "cat > blob"], stdin: blob).status == 0 else {
        return row("cannot put the file into the native domain: \(d.errorTail)")
    }
    var copy: [Double] = [], raw: [Double] = [], verified = false
    for i in 0..<runs {
        _ = runOdy(d, ["run", "-p", "-u", "user", vm, "--", "rm -rf QubesIncoming raw.bin"])
        var t0 = nowNanos()
        var out = runOdy(d, ["run", "-p", "-u", "user", "nat", "--", "ody-copy --to \(vm) blob"])
        if out.status == 0 { copy.append(Double(mib) * 1.048576 / (Double(nowNanos() - t0) / 1e9)) }
        else { print("vm bench: ody-copy failed: \(out.output.suffix(300))") }
        if i == 0 {   // once: the copy arrived whole
            let got = runOdy(d, ["run", "-p", "-u", "user", vm, "--", "sha256sum QubesIncoming/nat/blob"]).output
            verified = got.hasPrefix(sum) && !sum.isEmpty
            if !verified { print("vm bench: the copy's sha256 differs: \(got.prefix(80)) vs \(sum)") }
        }
        _ = runOdy(d, ["run", "-p", "-u", "user", vm, "--", "rm -rf QubesIncoming"])
        t0 = nowNanos()
        out = runOdy(d, ["run", "-p", "-u", "user", vm, "--", "cat > raw.bin"], stdin: blob)
        if out.status == 0 { raw.append(Double(mib) * 1.048576 / (Double(nowNanos() - t0) / 1e9)) }
        else { print("vm bench: raw stream failed: \(out.output.suffix(300))") }
    }
    _ = runOdy(d, ["run", "-p", "-u", "user", vm, "--", "rm -f raw.bin"])
    let m = median(copy), base = median(raw)
    return [BenchRow(name: "ody-copy \(mib) MiB native -> VM (\(runs) runs\(verified ? ", sha256 ok" : ", sha256 NOT ok"))",
                     unit: "MB/s", median: m, bar: ">= 0.7x raw",
                     passed: copy.count == runs && raw.count == runs && verified && m >= 0.7 * base,
                     baseline: "ody run -p VM -- 'cat > file' fed the bytes \(fmt(base)) MB/s",
                     ratio: String(format: "%.2fx", m / base))]
}

// MARK: bar 4: odysseyd memory per running VM domain

func vmMemoryBar(_ d: BenchDaemon, vms: [String]) -> [BenchRow] {
    // After the start bar, so libvirt's client library is already loaded:
    // what is measured is what each running VM domain adds.
    usleep(500_000)
    let before = readRSSKiB(d.pid)
    var started = 0
    for vm in vms where d.ody(["start", vm]).0 == 0 { started += 1 }
    usleep(1_000_000)
    let after = readRSSKiB(d.pid)
    let perDomain = (after - before) / 1024 / Double(vms.count)
    let qemu = vms.compactMap { vm -> Double? in
        guard let text = try? String(contentsOfFile: "/run/libvirt/qemu/\(vm).pid", encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return readRSSKiB(pid) / 1024
    }
    for vm in vms { d.ody(["kill", vm]) }
    return [BenchRow(name: "odysseyd RSS per running VM domain (\(started)/\(vms.count) up)", unit: "MB", median: perDomain,
                     bar: "<= 2 MB", passed: started == vms.count && perDomain <= 2,
                     baseline: "odysseyd \(fmt(before / 1024)) -> \(fmt(after / 1024)) MB; QEMU's own RSS \(fmt(median(qemu))) MB each")]
}

// MARK: helpers

/// The busybox template the VM tier uses: sh, the applets the bars call,
/// and the loader and libc the add-ons' runner (ody-copy's service) needs.
func vmBenchRootfs(_ dir: String) -> String? {
    guard let root = busyboxRootfs(dir) else { return nil }
    for applet in ["rm", "sha256sum", "dd"] { try? FileManager.default.createSymbolicLink(atPath: root + "/bin/" + applet, withDestinationPath: "busybox") }
    for lib in ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"] {
        let parent = (lib as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: root + parent, withIntermediateDirectories: true)
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: lib)).map { $0.hasPrefix("/") ? $0 : parent + "/" + $0 } ?? lib
        guard (try? FileManager.default.copyItem(atPath: real, toPath: root + lib)) != nil else { return nil }
    }
    return root
}

func odyProcess(_ d: BenchDaemon, _ args: [String]) -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: d.ody)
    p.arguments = args
    p.environment = ["ODYSSEY_SOCKET": d.socket, "PATH": "/usr/bin:/bin"]
    return p
}

/// `ody ARGS` with stdin from a file (or /dev/null); its stdout and stderr.
func runOdy(_ d: BenchDaemon, _ args: [String], stdin: String? = nil) -> (status: Int32, output: String) {
    run(odyProcess(d, args), stdin: stdin)
}

func runTool(_ exe: String, _ args: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    return run(p, stdin: nil)
}

private func run(_ p: Process, stdin: String?) -> (status: Int32, output: String) {
    let out = Pipe()
    p.standardOutput = out; p.standardError = out
    p.standardInput = FileHandle(forReadingAtPath: stdin ?? "/dev/null")
    guard (try? p.run()) != nil else { return (-1, "cannot run \(p.executableURL?.path ?? "?")") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
