// The memory the host has promised to running domains (issue 11, finding 4):
// each running domain commits its memory limit (maxmem if set, else memory:
// what the provider enforces), and a start that would take the sum above
// host RAM minus [limits] memory_reserve_mib is refused, naming the numbers.
// Check and commit are one step under the lock, so two starts racing for the
// last free MiB cannot both pass.
import Synchronization

final class MemoryBudget: Sendable {
    private let committed = Mutex<[String: UInt64]>([:])
    /// Host RAM in MiB (tests may pretend a smaller host).
    let hostMiB: UInt64

    init(hostMiB: UInt64 = ResourceLimits.hostMemoryMiB()) { self.hostMiB = hostMiB }

    /// The limit a domain's provider enforces: maxmem if set, else memory.
    static func limitMiB(memory: UInt64, maxmem: UInt64) -> UInt64 { maxmem > 0 ? maxmem : memory }

    /// What may be committed in all: host RAM minus the reserve.
    func capacityMiB(reserveMiB: Int) -> UInt64 {
        let reserve = UInt64(max(reserveMiB, 0))
        return hostMiB > reserve ? hostMiB - reserve : 0
    }

    /// Commits `mib` for `name`, or throws (.limit) if that would exceed the
    /// capacity. A host whose RAM cannot be read is not limited here.
    func commit(_ name: String, mib: UInt64, reserveMiB: Int) throws(OdysseyError) {
        let cap = capacityMiB(reserveMiB: reserveMiB)
        let refusal: OdysseyError? = committed.withLock { c in
            let others = c.filter { $0.key != name }.values.reduce(0, +)
            if hostMiB > 0, others + mib > cap {
                return OdysseyError(.limit, "not enough memory to start \(name): it needs \(mib) MiB (its memory limit), "
                    + "running domains hold \(others) MiB of \(cap) MiB (host \(hostMiB) MiB minus memory_reserve_mib \(reserveMiB)); "
                    + "stop a domain, or lower maxmem (ody prefs DOMAIN maxmem MiB)",
                    cause: "QubesMemoryError")
            }
            c[name] = mib
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Commits without a check: a domain found running after a daemon restart.
    func adopt(_ name: String, mib: UInt64) { committed.withLock { $0[name] = mib } }

    func release(_ name: String) { committed.withLock { _ = $0.removeValue(forKey: name) } }

    /// MiB committed now, for logs and status.
    var committedMiB: UInt64 { committed.withLock { $0.values.reduce(0, +) } }
}
