// cgroup v1 for one domain: memory, pids, freezer, cpu and cpuacct
// hierarchies, each at /sys/fs/cgroup/<controller>/<cgroup_parent>/<name>.
// The plugin creates and limits them; the jailer joins them before it
// creates the domain's cgroup namespace; stop removes them.
import Glibc
import PluginABI

struct Cgroups {
    static let root = "/sys/fs/cgroup"
    /// Controllers the plugin uses; each is optional except where a limit needs it.
    static let controllers = ["memory", "pids", "freezer", "cpu", "cpuacct"]

    let parent: String
    let name: String

    /// Controllers mounted as v1 hierarchies on this host (one dir per
    /// hierarchy: "cpu" and "cpuacct" may be one co-mounted hierarchy).
    static func available() -> [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for c in controllers where Sys.exists("\(root)/\(c)/cgroup.procs") {
            var real = c
            if let p = realpath("\(root)/\(c)", nil) { real = String(cString: p); free(p) }
            if seen.insert(real).inserted { out.append(c) }
        }
        return out
    }

    func dir(_ controller: String) -> String { "\(Cgroups.root)/\(controller)/\(parent)/\(name)" }

    /// The directories that exist now (a domain's cgroups, for join/cleanup).
    func existing() -> [String] {
        Cgroups.controllers.map(dir).filter { Sys.isDirectory($0) }
    }

    /// Creates the domain's cgroups and applies its limits. Missing
    /// controllers are an error when a limit needs them.
    /// The CPUs a domain asking for `vcpus` may use: at most the host's
    /// online CPUs minus `reserve`, at least one. Why: on a small host a
    /// domain with as many vcpus as the host has CPUs (Qubes' default is 2)
    /// could keep every CPU busy; a domain spinning on memory (a string
    /// doubled for ever) then slowed a qrexec call between two other domains
    /// 3x (measured), since CFS lets the spinning group run out its slice on
    /// each CPU before a woken agent gets one. A CPU left over keeps the host
    /// and the other domains responsive.
    static func cpuQuota(vcpus: UInt32, reserve: UInt32, online: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) -> UInt32 {
        let cap = max(1, online - Int(reserve))
        return UInt32(min(Int(vcpus), cap))
    }

    func create(limitMiB: UInt64, pidsMax: UInt64, vcpus: UInt32) throws -> [String] {
        let have = Cgroups.available()
        for needed in ["memory", "pids", "freezer"] where !have.contains(needed) {
            throw NativeError(ODY_E_UNSUPPORTED, "native: cgroup v1 controller '\(needed)' is not mounted at \(Cgroups.root)/\(needed): needed for the domain's limits and pause")
        }
        var dirs: [String] = []
        for c in have {
            let d = dir(c)
            // Once more if another domain's stop removed the (then empty)
            // parent between our mkdir of it and of `d`.
            do { try Sys.mkdirs(d) } catch { try Sys.mkdirs(d) }
            dirs.append(d)
        }
        let mem = dir("memory")
        if limitMiB > 0 {
            let bytes = String(limitMiB * 1024 * 1024)
            try Sys.writeKnob("\(mem)/memory.limit_in_bytes", bytes)
            // With swap, memory+swap gets the same limit: the domain cannot
            // escape its limit into swap.
            if Sys.exists("\(mem)/memory.memsw.limit_in_bytes") {
                try Sys.writeKnob("\(mem)/memory.memsw.limit_in_bytes", bytes)
            }
        }
        try Sys.writeKnob("\(dir("pids"))/pids.max", pidsMax == 0 ? "max" : String(pidsMax))
        try Sys.writeKnob("\(dir("freezer"))/freezer.state", "THAWED")
        if vcpus > 0, have.contains("cpu"), Sys.exists("\(dir("cpu"))/cpu.cfs_quota_us") {
            try Sys.writeKnob("\(dir("cpu"))/cpu.cfs_period_us", "100000")
            try Sys.writeKnob("\(dir("cpu"))/cpu.cfs_quota_us", String(UInt64(vcpus) * 100_000))
        }
        return dirs
    }

    /// Pids in any of the domain's cgroups.
    func pids() -> [Int32] {
        var out: Set<Int32> = []
        for d in existing() {
            for line in (Sys.readText("\(d)/cgroup.procs") ?? "").split(separator: "\n") {
                if let p = Int32(line) { out.insert(p) }
            }
        }
        return out.sorted()
    }

    func freezerState() -> String? {
        Sys.readText("\(dir("freezer"))/freezer.state")?.split(separator: "\n").first.map(String.init)
    }

    /// Freezes or thaws, returning once the freezer reports the final state.
    func setFrozen(_ frozen: Bool) throws {
        let want = frozen ? "FROZEN" : "THAWED"
        try Sys.writeKnob("\(dir("freezer"))/freezer.state", want)
        let deadline = Sys.monotonicNanos() + 2_000_000_000
        while freezerState() != want {
            if Sys.monotonicNanos() > deadline {
                throw NativeError(ODY_E_TIMEOUT, "native: \(name): freezer.state stayed \(freezerState() ?? "?"), wanted \(want)")
            }
            Sys.sleepMillis(1)
        }
    }

    func memoryUsageKiB() -> UInt64 {
        UInt64((Sys.readText("\(dir("memory"))/memory.usage_in_bytes") ?? "").split(separator: "\n").first ?? "")
            .map { $0 / 1024 } ?? 0
    }

    func cpuNanos() -> UInt64 {
        UInt64((Sys.readText("\(dir("cpuacct"))/cpuacct.usage") ?? "").split(separator: "\n").first ?? "") ?? 0
    }

    /// Kills everything left in the domain's cgroups (thawing first: a frozen
    /// task cannot die), then removes the directories.
    func destroy() throws {
        var deadline = Sys.monotonicNanos() + 2_000_000_000
        while true {
            let left = pids()
            if left.isEmpty { break }
            if Sys.isDirectory(dir("freezer")) { try? Sys.writeKnob("\(dir("freezer"))/freezer.state", "THAWED") }
            for p in left { kill(p, SIGKILL) }
            if Sys.monotonicNanos() > deadline {
                throw NativeError(ODY_E_BUSY_FALLBACK, "native: \(name): processes \(left) survive SIGKILL in its cgroups")
            }
            Sys.sleepMillis(1)
        }
        deadline = Sys.monotonicNanos() + 2_000_000_000
        for d in existing() {
            // A cgroup whose last task is still exiting is briefly busy.
            while rmdir(d) != 0 {
                let e = errno
                if e == ENOENT { break }
                if e != EBUSY || Sys.monotonicNanos() > deadline { throw NativeError.sys("rmdir \(d)", e) }
                Sys.sleepMillis(1)
            }
        }
        removeParentIfEmpty()
    }

    /// The parent goes with its last domain, so daemons with a parent of
    /// their own (tests, benchmarks) leave no directory behind. rmdir refuses
    /// a parent that still holds a domain, which is the check; a start that
    /// races it makes the parent again (`create`).
    func removeParentIfEmpty() {
        for c in Cgroups.controllers { rmdir("\(Cgroups.root)/\(c)/\(parent)") }
    }
}

private let ODY_E_BUSY_FALLBACK = ODY_E_BACKEND
