// Reloads the policy when anything under a policy directory changes, however
// deep and however late it appeared. A revocation that the daemon does not see
// is a grant that silently stays (issue 11, finding 12: `include/` created
// after start was never watched, deleting a line there changed nothing).
//
// - inotify on every directory under the policy directories; a directory that
//   appears gets its watch at once, and the reload that follows reads the
//   files again, so a file written before the watch was added is not missed;
// - a backstop every `backstopSeconds`: the fingerprint of what is on disk
//   (PolicyFingerprint) compared with the last one; a change reloads. It
//   covers what inotify cannot: a policy directory that did not exist at
//   start, a full inotify queue, watch limits.
// Events are coalesced: an editor's write-rename-chmod burst causes one reload.
#if canImport(Glibc)
import Glibc
#endif

public enum PolicyWatcher {
    public static let backstopSeconds: Int32 = 2

    /// Starts a thread that calls `onChange` after changes settle. Returns
    /// false if inotify is unavailable (the backstop still runs).
    @discardableResult
    public static func start(directories: [String], onChange: @escaping @Sendable () -> Void) -> Bool {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF
                          | IN_MOVE_SELF | IN_MODIFY)
        // Adding a watch twice returns the same one: every directory is (re)added
        // after each change, so a directory removed and made again is watched too.
        let watchAll = { @Sendable (dirs: [String]) in
            if fd >= 0 { for d in dirs { _ = inotify_add_watch(fd, d, mask) } }
        }
        let first = PolicyFingerprint.of(directories)
        watchAll(first.directories)
        Threads.detach {
            var last = first
            var buf = [UInt8](repeating: 0, count: 4096)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while true {
                var ready: Int32 = 0
                if fd >= 0 { ready = poll(&pfd, 1, backstopSeconds * 1000) } else { sleep(UInt32(backstopSeconds)) }
                if ready < 0 { if errno == EINTR { continue }; sleep(UInt32(backstopSeconds)); continue }
                if ready > 0 {
                    // Coalesce the burst: wait until 50 ms pass without events.
                    repeat { while read(fd, &buf, buf.count) > 0 {} } while poll(&pfd, 1, 50) > 0
                }
                let now = PolicyFingerprint.of(directories)
                watchAll(now.directories)   // before the reload reads them: nothing written after is missed
                if ready > 0 || now != last {
                    last = now
                    onChange()
                }
            }
        }
        return fd >= 0
    }
}
