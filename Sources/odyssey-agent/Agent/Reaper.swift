// The one place that calls waitpid: as PID 1 the agent inherits every orphan
// of the domain, so it reaps everything and hands each status to the session
// that registered the pid (through a notification fd), keeping statuses of
// pids not registered yet for a moment (a child can exit before its session
// registers it).
#if canImport(Glibc)
import Glibc
#endif
import VchanSocketCore

final class Reaper: @unchecked Sendable {
    static let shared = Reaper()

    private let lock = PLock()
    private var waiting: [pid_t: Int32] = [:]      // pid -> notify fd (write end)
    private var statuses: [pid_t: Int32] = [:]     // registered pid -> wait status
    private var unclaimed: [(pid_t, Int32)] = []   // reaped before registration
    private var groups: Set<pid_t> = []            // process groups of running sessions

    /// Registers `pid` (its own process group); `notifyFD` gets one byte when it exits.
    func register(_ pid: pid_t, notifyFD: Int32) {
        lock.locked {
            groups.insert(pid)
            if let i = unclaimed.firstIndex(where: { $0.0 == pid }) {
                statuses[pid] = unclaimed.remove(at: i).1
                var b: UInt8 = 1
                _ = write(notifyFD, &b, 1)
            } else {
                waiting[pid] = notifyFD
            }
        }
    }

    /// The status of an exited registered pid (nil while it runs); forgets it.
    /// Reaps `pid` now if it has exited (its session saw its pidfd become
    /// readable: no wait for SIGCHLD to reach the signal thread and the note
    /// to come back). Its status, or nil while it runs.
    func reapNow(_ pid: pid_t) -> Int32? {
        lock.locked {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                waiting[pid] = nil
                groups.remove(pid)
                return status
            }
            // Reaped meanwhile by reapAll: its status waits here.
            guard let s = statuses.removeValue(forKey: pid) else { return nil }
            waiting[pid] = nil
            groups.remove(pid)
            return s
        }
    }

    func take(_ pid: pid_t) -> Int32? {
        lock.locked {
            guard let s = statuses.removeValue(forKey: pid) else { return nil }
            groups.remove(pid)
            return s
        }
    }

    /// A session that ends before its child: the status will be dropped.
    func forget(_ pid: pid_t) {
        lock.locked { waiting[pid] = nil; statuses[pid] = nil; groups.remove(pid) }
    }

    /// Process groups of commands still running (for signal forwarding).
    var runningGroups: [pid_t] { lock.locked { Array(groups) } }

    /// Reaps every exited child (called on SIGCHLD). Returns false once there
    /// are no children left at all (ECHILD).
    @discardableResult
    func reapAll() -> Bool {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == 0 { return true }
            if pid < 0 { if errno == EINTR { continue }; return errno != ECHILD }
            lock.locked {
                if let fd = waiting.removeValue(forKey: pid) {
                    statuses[pid] = status
                    var b: UInt8 = 1
                    _ = write(fd, &b, 1)
                } else {
                    unclaimed.append((pid, status))
                    if unclaimed.count > 256 { unclaimed.removeFirst(unclaimed.count - 256) }
                }
            }
        }
    }
}
