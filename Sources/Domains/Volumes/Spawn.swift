// Runs a tool (cp, tar) with posix_spawn and an argv, never through a shell,
// and collects its output. Used only for bulk file work.
#if canImport(Glibc)
import Glibc
#endif

public enum Spawn {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Where tools are taken from. The daemon runs as root: argv[0] is never
    /// looked up in the caller's PATH (a writable directory there would be a
    /// privilege escalation), and tools get a fixed, minimal environment.
    static let trustedDirectories = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    static let toolEnvironment = ["PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C"]

    static func resolve(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return tool }
        return trustedDirectories.map { "\($0)/\(tool)" }.first { access($0, X_OK) == 0 }
    }

    /// Runs `argv` (argv[0] from the trusted directories), stdin from
    /// /dev/null; throws if it cannot start or exits non-zero (the error
    /// quotes its stderr).
    @discardableResult
    public static func run(_ argv: [String], allowFailure: Bool = false) throws(DomainError) -> Result {
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard makePipe(&outPipe) else { throw FileOps.fail("pipe for", argv[0]) }
        guard makePipe(&errPipe) else {
            close(outPipe[0]); close(outPipe[1])
            throw FileOps.fail("pipe for", argv[0])
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Default signal dispositions in the child (the daemon may ignore SIGPIPE).
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        guard let exe = resolve(argv[0]) else {
            close(outPipe[0]); close(outPipe[1]); close(errPipe[0]); close(errPipe[1])
            throw .storage("\(argv[0]) not found in \(trustedDirectories.joined(separator: ":"))")
        }
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var cenv: [UnsafeMutablePointer<CChar>?] = toolEnvironment.map { strdup($0) } + [nil]
        defer { for p in cenv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, &cargs, &cenv)
        close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw FileOps.fail("spawn", argv[0], rc)
        }
        let (out, err) = drain(outPipe[0], errPipe[0])
        close(outPipe[0]); close(errPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED/WEXITSTATUS are macros: decode by hand.
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let result = Result(status: code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
        if code != 0 && !allowFailure {
            let msg = result.stderr.split(separator: "\n").prefix(5).joined(separator: "; ")
            throw .storage("\(argv.joined(separator: " ")): exit status \(code)\(msg.isEmpty ? "" : ": \(msg)")")
        }
        return result
    }

    /// pipe() with close-on-exec on both ends (pipe2 needs _GNU_SOURCE), so a
    /// concurrent spawn elsewhere in the daemon does not inherit them.
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    /// Reads both pipes to EOF without letting either fill up.
    private static func drain(_ a: Int32, _ b: Int32) -> ([UInt8], [UInt8]) {
        var bufs: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var open = 2
        var chunk = [UInt8](repeating: 0, count: 65536)
        while open > 0 {
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 { if errno == EINTR { continue }; break }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let r = chunk.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress!, $0.count) }
                if r > 0 { bufs[i] += chunk[0..<r] }
                else if r == 0 || errno != EINTR { fds[i].fd = -1; open -= 1 }
            }
        }
        return (bufs[0], bufs[1])
    }
}
