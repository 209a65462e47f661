// [limits] in odyssey.toml: what the daemon lets domains take from the host
// as a whole (issue 11, finding 4). A domain's own cgroup limits bound one
// domain; these bound what domains multiply through disposables, preloads
// and asks. Defaults are safe on a small machine; every key is checked.
#if canImport(Glibc)
import Glibc
#endif

public struct ResourceLimits: Sendable, Equatable {
    /// Disposables alive at once that one domain has asked for (@dispvm calls).
    public var dispvmsPerDomain = 4
    /// Disposables alive at once in all, preloaded ones included.
    public var dispvmsTotal = 32
    /// Most preloaded disposables one template may keep (its
    /// `preload-dispvm-max` feature is clamped to this).
    public var preloadDispvmMax = 4
    /// Host RAM (MiB) kept out of reach of domains: the memory limits of all
    /// running domains add up to at most host RAM minus this.
    public var memoryReserveMiB = 1024
    /// Calls of one domain waiting on an `ask` at once; more are refused.
    public var asksPerSource = 32

    public init() {}

    public static let defaults = ResourceLimits()

    /// The keys of [limits], for error messages.
    static let keys = ["dispvms_per_domain", "dispvms_total", "preload_dispvm_max", "memory_reserve_mib", "asks_per_source"]

    /// Reads one key of [limits]; nil when the key is unknown. Bounds are
    /// there to catch typos, not to second-guess the admin.
    mutating func set(_ key: String, _ n: Int) -> String? {
        func check(_ lo: Int, _ hi: Int) -> String? { n >= lo && n <= hi ? nil : "expected an integer between \(lo) and \(hi)" }
        switch key {
        case "dispvms_per_domain": if let e = check(0, 4096) { return e }; dispvmsPerDomain = n
        case "dispvms_total": if let e = check(0, 4096) { return e }; dispvmsTotal = n
        case "preload_dispvm_max": if let e = check(0, 64) { return e }; preloadDispvmMax = n
        case "memory_reserve_mib": if let e = check(0, 1 << 30) { return e }; memoryReserveMiB = n
        case "asks_per_source": if let e = check(1, 4096) { return e }; asksPerSource = n
        default: return "unknown key (known: \(Self.keys.joined(separator: ", ")))"
        }
        return nil
    }

    /// The host's RAM in MiB, 0 if unknown.
    public static func hostMemoryMiB() -> UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 0 }
        return UInt64(pages) * UInt64(size) / (1024 * 1024)
    }
}
