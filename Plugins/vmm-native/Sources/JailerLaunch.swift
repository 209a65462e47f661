// Starting a domain = posix_spawn the jailer (never fork in this
// multithreaded process), hand it the spec on fd 3, read its one status line
// on fd 4. See Plugins/vmm-native/Jailer/jailer.c for the other side.
import Glibc
import PluginABI
import CVmmNative

enum JailerLaunch {
    /// The jailer's spec: NUL-separated key=value entries.
    static func spec(_ l: Layout, cgroups: [String], seccomp: SeccompProfile) -> [UInt8] {
        var e: [String] = [
            "name=\(l.name)", "hostname=\(l.hostname)", "root_mode=\(l.persistentRoot ? "persistent" : "snapshot")",
            "root_dir=\(l.rootDir)", "run_dir=\(l.runDir)", "private_dir=\(l.privateDir)", "init=\(l.initPath)",
            "uid_base=\(l.uidBase)", "uid_count=\(l.uidCount)", "volatile_mib=\(l.volatileMiB)", "nofile_max=\(l.nofileMax)",
            "seccomp_default=\(seccomp.defaultAction)",
        ]
        e += l.args.map { "arg=\($0)" }
        e += l.env.map { "env=\($0)" }
        e += cgroups.map { "cgroup=\($0)" }
        e += l.bindRO.map { "bind_ro=\($0)" }
        e += l.bindRW.map { "bind_rw=\($0)" }
        e += seccomp.rules.map { "seccomp=\($0)" }
        var out: [UInt8] = []
        for s in e { out += Array(s.utf8); out.append(0) }
        return out
    }

    /// Runs the jailer; returns init's host pid once init has exec'd.
    /// On failure the jailer's message (naming the step) is thrown, and a
    /// child that died half-built has been reaped.
    static func run(jailer: String, spec: [UInt8], console: String, name: String) throws -> Int32 {
        var specPipe: [Int32] = [-1, -1], statusPipe: [Int32] = [-1, -1]
        try Sys.check("pipe2") { vmm_pipe2(&specPipe, O_CLOEXEC) }
        defer { for fd in specPipe where fd >= 0 { close(fd) } }
        try Sys.check("pipe2") { vmm_pipe2(&statusPipe, O_CLOEXEC) }
        defer { for fd in statusPipe where fd >= 0 { close(fd) } }
        // Sources above 10 so the dup2s onto 3 and 4 cannot clobber each other.
        var specSrc = try Sys.check("dup spec pipe") { fcntl(specPipe[0], F_DUPFD_CLOEXEC, 10) }
        defer { if specSrc >= 0 { close(specSrc) } }
        var statusSrc = try Sys.check("dup status pipe") { fcntl(statusPipe[1], F_DUPFD_CLOEXEC, 10) }
        defer { if statusSrc >= 0 { close(statusSrc) } }
        // The whole spec goes into the pipe before the spawn: no blocking, and
        // no SIGPIPE for the host if the jailer died before reading it.
        if spec.count > 60000 {
            try Sys.check("grow spec pipe to \(spec.count) bytes") { vmm_set_pipe_size(specPipe[1], Int32(spec.count + 4096)) }
        }
        var done = 0
        while done < spec.count {
            let n = spec.withUnsafeBytes { write(specPipe[1], $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw NativeError.sys("write jailer spec for \(name)") }
            done += n
        }
        close(specPipe[1]); specPipe[1] = -1
        let consoleFd = try Sys.check("open console log \(console)") {
            open(console, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        }
        defer { close(consoleFd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, consoleFd, 1)
        posix_spawn_file_actions_adddup2(&actions, consoleFd, 2)
        posix_spawn_file_actions_adddup2(&actions, specSrc, 3)
        posix_spawn_file_actions_adddup2(&actions, statusSrc, 4)

        // The host's threads may block or ignore signals; the domain must not
        // inherit that.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(jailer), nil]
        defer { for a in argv { free(a) } }
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { for a in envp { free(a) } }
        let rc = posix_spawn(&pid, jailer, &actions, &attr, argv, envp)
        guard rc == 0 else { throw NativeError.sys("spawn jailer \(jailer) for \(name)", rc) }

        // Only the jailer (and its child) may hold the status pipe's write
        // end now: EOF then means they are done.
        close(specPipe[0]); specPipe[0] = -1
        close(specSrc); specSrc = -1
        close(statusPipe[1]); statusPipe[1] = -1
        close(statusSrc); statusSrc = -1
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        // The jailer answers within milliseconds; a hung one (a stuck mount,
        // say) is killed after 30 s instead of hanging start() forever.
        let deadline = Sys.monotonicNanos() + 30_000_000_000
        while true {
            var pfd = pollfd(fd: statusPipe[0], events: Int16(POLLIN), revents: 0)
            let left = deadline > Sys.monotonicNanos() ? (deadline - Sys.monotonicNanos()) / 1_000_000 : 0
            let ready = poll(&pfd, 1, Int32(left))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 {
                Glibc.kill(pid, SIGKILL)
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                throw NativeError(ODY_E_TIMEOUT, "native: jailer for \(name) gave no answer within 30 s; killed it")
            }
            let n = chunk.withUnsafeMutableBytes { read(statusPipe[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            reply += chunk[0..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}

        let line = String(decoding: reply, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
        if parts.count == 2, parts[0] == "ok", let initPid = Int32(parts[1]), initPid > 0 {
            return initPid
        }
        if parts.count == 4, parts[0] == "err" {
            if let dead = Int32(parts[1]), dead > 0 {
                var st: Int32 = 0
                while waitpid(dead, &st, 0) < 0 && errno == EINTR {}
            }
            let e = Int32(parts[2]) ?? 0
            var err = NativeError(ODY_E_BACKEND, parts[3], errno: e)
            if e == EPERM || e == EACCES { err.code = ODY_E_PERMISSION }
            throw err
        }
        let how = (status & 0x7f) == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
        throw NativeError(ODY_E_BACKEND, "native: jailer for \(name) ended (\(how)) without a status line; see \(console)")
    }
}
