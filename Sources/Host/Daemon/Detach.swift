// Running odysseyd in the background without fork (Swift cannot fork a
// multithreaded process safely): re-exec ourselves with --foreground in a new
// session, output to a log file, and wait until the child says it is ready.
import CSupport
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

public enum Detach {
    /// Spawns `argv` detached; returns the child's pid once it wrote READY
    /// on the pipe passed as --ready-fd, or throws with the log's tail.
    public static func spawnAndWaitReady(executable: String, arguments: [String], logPath: String,
                                         timeoutSeconds: Double = 30) throws(OdysseyError) -> pid_t {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Sys.error("pipe") }
        let (readFD, writeFD) = (fds[0], fds[1])
        defer { Sys.close(readFD) }
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard logFD >= 0 else { Sys.close(writeFD); throw Sys.error("open \(logPath)") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        posix_spawn_file_actions_adddup2(&actions, writeFD, 3)
        _ = ody_spawn_closefrom(&actions, 4)   // nothing else of the caller's
        let argv = [executable] + arguments + ["--foreground", "--ready-fd", "3"]
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = Sys.withCleanSpawnAttributes(setsid: true) { attr in posix_spawn(&pid, executable, &actions, &attr, &cargs, environ) }
        Sys.close(writeFD)
        Sys.close(logFD)
        guard rc == 0 else { throw Sys.error("spawn \(executable)", errno: rc) }

        var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, Int32(timeoutSeconds * 1000))
        var buf = [UInt8](repeating: 0, count: 16)
        let n = read(readFD, &buf, buf.count)
        if n > 0, String(decoding: buf[..<n], as: UTF8.self).hasPrefix("READY") { return pid }
        let log = FileManager.default.contents(atPath: logPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let tail = log.split(separator: "\n").suffix(5).joined(separator: "\n")
        throw OdysseyError(.io, "odysseyd did not become ready; last lines of \(logPath):\n\(tail)")
    }

    /// Tells the parent (or a benchmark) that the daemon serves.
    public static func notifyReady(fd: Int32) {
        let msg = Array("READY\n".utf8)
        _ = msg.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
