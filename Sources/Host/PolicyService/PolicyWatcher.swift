// Reloads the policy when a file in a policy directory (or one level below,
// e.g. include/) changes, via inotify. Events are coalesced: an editor's
// write-rename-chmod burst causes one reload.
#if canImport(Glibc)
import Glibc
#endif

public enum PolicyWatcher {
    /// Starts a thread that calls `onChange` after changes settle. Returns
    /// false (and the daemon relies on SIGHUP) if inotify is unavailable.
    @discardableResult
    public static func start(directories: [String], onChange: @escaping @Sendable () -> Void) -> Bool {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return false }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF)
        var watched = 0
        for dir in directories {
            if inotify_add_watch(fd, dir, mask) >= 0 { watched += 1 }
            for sub in subdirectories(of: dir) { _ = inotify_add_watch(fd, sub, mask) }
        }
        guard watched > 0 else { close(fd); return false }
        Threads.detach {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                // Coalesce the burst: wait until 50 ms pass without events.
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while poll(&pfd, 1, 50) > 0 { _ = read(fd, &buf, buf.count) }
                onChange()
            }
        }
        return true
    }

    private static func subdirectories(of dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            let p = dir + "/" + name
            if Sys.isDirectory(p) { out.append(p) }
        }
        return out
    }
}
