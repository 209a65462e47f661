// Services of the admin domain (dom0), run on the host for calls whose
// target is dom0 (`qubes.GetDate` redirected to dom0, ...). Looked up as
// Qubes does: a file named `SERVICE+ARG` (if that name is at most 255 bytes),
// else `SERVICE`, in each directory in order (<state_dir>/qubes-rpc first,
// then the config's qubes-rpc/). Executables run with the Qubes environment
// (QREXEC_REMOTE_DOMAIN, QREXEC_SERVICE_FULL_NAME, QREXEC_SERVICE_ARGUMENT,
// QREXEC_REQUESTED_TARGET_TYPE, QREXEC_REQUESTED_TARGET) and the call's
// data channel as stdin/stdout; their stderr goes to the caller as
// MSG_DATA_STDERR. No name ever passes through a shell. Not found: exit 127.
// Services registered in-process (register(prefix:), e.g. the daemon's
// admin.* methods) are answered inside odysseyd instead: stdin read to EOF,
// the handler's bytes sent as STDOUT, then EOF and its exit code.
#if canImport(Qrexec)
import Logging
import Qrexec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class HostServices: @unchecked Sendable {
    public let directories: [String]
    let logger: Logger

    /// A service answered inside odysseyd instead of by an executable: given
    /// the caller (from its channel), the target it requested, the service
    /// name (`SERVICE[+ARG]`) and its whole stdin, returns stdout and an exit code.
    public typealias InProcess = @Sendable (_ source: String, _ requestedTarget: String, _ service: String,
                                            _ stdin: [UInt8]) -> InProcessReply

    /// What an in-process service answers: all of its output at once, or a
    /// readable descriptor whose bytes are streamed as STDOUT until EOF or
    /// until the caller leaves (then the descriptor is shut down, so the
    /// writer behind it stops): admin.Events.
    public enum InProcessReply: Sendable {
        case bytes(stdout: [UInt8], exitCode: Int32)
        case stream(Int32)
    }
    /// The most stdin an in-process service reads (an admin request payload).
    public static let inProcessStdinLimit = 65536
    private let inProcess = Mutex<[(prefix: String, handler: InProcess)]>([])

    /// Calls whose service name starts with `prefix` (e.g. "admin.") are
    /// answered by `handler`; they never look for an executable.
    public func register(prefix: String, _ handler: @escaping InProcess) {
        inProcess.withLock { $0.removeAll { $0.prefix == prefix }; $0.append((prefix, handler)) }
    }

    public func unregister(prefix: String) { inProcess.withLock { $0.removeAll { $0.prefix == prefix } } }

    func inProcessHandler(_ service: String) -> InProcess? {
        inProcess.withLock { t in t.first { service.hasPrefix($0.prefix) }?.handler }
    }

    /// Seconds an in-process call has to send its whole stdin.
    let stdinDeadline: Double

    public init(directories: [String], logger: Logger, stdinDeadline: Double = 30) {
        self.directories = directories
        self.logger = logger
        self.stdinDeadline = stdinDeadline
    }

    /// The executable for `SERVICE[+ARG]`, and whether the argument must be
    /// passed (the file found was `SERVICE`, not `SERVICE+ARG`).
    public func lookup(_ call: String) -> (path: String, passArgument: Bool)? {
        let plus = call.firstIndex(of: "+")
        let base = plus.map { String(call[..<$0]) } ?? call
        guard !base.isEmpty, base.utf8.count <= 255, !base.hasPrefix("."), !call.contains("/") else { return nil }
        for dir in directories {
            if plus != nil, call.utf8.count <= 255, access("\(dir)/\(call)", X_OK) == 0, !Sys.isDirectory("\(dir)/\(call)") {
                return ("\(dir)/\(call)", false)
            }
            if access("\(dir)/\(base)", X_OK) == 0, !Sys.isDirectory("\(dir)/\(base)") { return ("\(dir)/\(base)", true) }
        }
        return nil
    }

    /// Serves one call on `channel` (taken over: closed when done) on a thread of its own.
    func serve(channel: Int32, service: String, source: String, requestedTarget: String) {
        // In-process calls (admin.*) are bounded per source, before any thread
        // is started: a delegate held 900 admin calls open, 921 daemon threads
        // (issue 11, finding 16).
        let inProc = inProcessHandler(service) != nil
        if inProc {
            let admitted = inProcessOpen.withLock { open -> Bool in
                guard open[source, default: 0] < Self.inProcessPerSource else { return false }
                open[source, default: 0] += 1
                return true
            }
            guard admitted else {
                logger.warning("dom0 service \(service) from \(source): refused, \(Self.inProcessPerSource) calls already open")
                Sys.close(channel)
                return
            }
        }
        Threads.detach { [self] in
            defer {
                Sys.close(channel)
                if inProc { inProcessOpen.withLock { o in o[source, default: 1] -= 1; if o[source] == 0 { o[source] = nil } } }
            }
            run(channel: channel, service: service, source: source, requestedTarget: requestedTarget)
        }
    }

    /// Ends a call on `channel` (taken over) with `message` on the caller's
    /// stderr and `exitCode`: a call the policy allowed but a limit refused
    /// (exit 125, "qrexec failure", with the reason where the user sees it).
    func serveFailure(channel: Int32, message: String, exitCode: Int32) {
        Threads.detach { [self] in
            defer { Sys.close(channel) }
            var pfd = pollfd(fd: channel, events: Int16(POLLIN), revents: 0)
            while poll(&pfd, 1, 10_000) < 0 && errno == EINTR {}
            guard pfd.revents != 0 else { return }
            var stream = QrexecStream(fd: channel, incoming: .clientToService)
            do { try stream.handshake() } catch {
                logger.debug("refusal message: handshake: \(error)")
                return
            }
            try? stream.send(.stderr(Array("odysseyd: \(message)\n".utf8)))
            try? stream.send(.exitCode(exitCode))
        }
    }

    /// In-process calls one source may have open at once.
    public static let inProcessPerSource = 32
    private let inProcessOpen = Mutex<[String: Int]>([:])
    /// Channels still sending their stdin, with the monotonic time (ns) they
    /// must be done by, guarded by `watch`; the watchdog shuts down the late
    /// ones, which ends their blocked read. It sleeps until the earliest
    /// deadline, and while nothing is watched, until a channel is added.
    private let watch = Monitor()
    private var stdinDeadlines: [Int32: Int64] = [:]
    private let watchdogStarted = Atomic<Bool>(false)

    private func watchStdin(_ fd: Int32) {
        watch.withLock {
            stdinDeadlines[fd] = Monitor.nowNs() + Int64(stdinDeadline * 1e9)
            watch.broadcast()
        }
        guard !watchdogStarted.exchange(true, ordering: .relaxed) else { return }
        Threads.detach { [self] in
            watch.withLock {
                while true {
                    let now = Monitor.nowNs()
                    for (fd, end) in stdinDeadlines where end <= now {
                        shutdown(fd, Int32(SHUT_RDWR))
                        stdinDeadlines[fd] = nil
                    }
                    _ = watch.wait(untilNs: stdinDeadlines.values.min())
                }
            }
        }
    }

    /// Whether the channel was still being watched (false: the watchdog cut it).
    private func unwatchStdin(_ fd: Int32) -> Bool { watch.withLock { stdinDeadlines.removeValue(forKey: fd) != nil } }

    private func run(channel fd: Int32, service: String, source: String, requestedTarget: String) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, 10_000) < 0 && errno == EINTR {}
        guard pfd.revents != 0 else { logger.info("dom0 service \(service) from \(source): no HELLO within 10 s"); return }
        var stream = QrexecStream(fd: fd, incoming: .clientToService)
        do { try stream.handshake() } catch {
            logger.info("dom0 service \(service) from \(source): handshake: \(error)")
            return
        }
        if let handler = inProcessHandler(service) {
            runInProcess(handler, &stream, channelFD: fd, service: service, source: source, requestedTarget: requestedTarget)
            shutdown(fd, Int32(SHUT_RDWR))
            return
        }
        guard let (path, passArg) = lookup(service) else {
            logger.notice("dom0 service \(service) requested by \(source): not found")
            try? stream.send(.stderr(Array("odysseyd: service \(service) not found in dom0\n".utf8)))
            try? stream.send(.exitCode(127))
            return
        }
        let argument = PolicyArgument.of(service)
        let target = requestedTarget.isEmpty ? "@default" : requestedTarget
        let env = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "QREXEC_REMOTE_DOMAIN=\(source)",
            "QREXEC_SERVICE_FULL_NAME=\(service)",
            "QREXEC_SERVICE_ARGUMENT=\(argument)",
            "QREXEC_REQUESTED_TARGET_TYPE=\(target.hasPrefix("@") || target == "dom0" ? "keyword" : "name")",
            "QREXEC_REQUESTED_TARGET=\(target == "dom0" ? "@adminvm" : target)",
            "QREXEC_SERVICE_PATH=\(path)",
        ]
        let argv = passArg && !argument.isEmpty ? [path, argument] : [path]
        var inP: [Int32] = [-1, -1], outP: [Int32] = [-1, -1], errP: [Int32] = [-1, -1]
        guard pipe(&inP) == 0, pipe(&outP) == 0, pipe(&errP) == 0 else {
            for f in inP + outP + errP where f >= 0 { Sys.close(f) }
            try? stream.send(.exitCode(125))
            return
        }
        for f in [inP[1], outP[0], errP[0]] { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        guard let pid = Self.spawn(argv, env, stdin: inP[0], stdout: outP[1], stderr: errP[1]) else {
            for f in inP + outP + errP { Sys.close(f) }
            try? stream.send(.stderr(Array("odysseyd: cannot run \(path)\n".utf8)))
            try? stream.send(.exitCode(127))
            return
        }
        Sys.close(inP[0]); Sys.close(outP[1]); Sys.close(errP[1])
        // The caller's STDIN -> the service's stdin, on a thread of its own.
        let stdinW = inP[1]
        var reader = stream
        let readFD = dup(fd)   // its own descriptor: the channel may be closed while it still reads
        reader = QrexecStream(fd: readFD, incoming: .clientToService)
        reader.version = stream.version
        let r = reader
        Threads.detach {
            var s = r
            defer { Sys.close(stdinW); Sys.close(readFD) }
            while true {
                guard let m = try? s.receive() else { return }
                switch DataStream.event(m, incoming: .clientToService) {
                case .data(let b): if (try? FD.writeAll(stdinW, b)) == nil { return }
                case .eof: return
                default: continue
                }
            }
        }
        // The service's stdout/stderr -> the caller, then its exit status.
        var fds = [pollfd(fd: outP[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errP[0], events: Int16(POLLIN), revents: 0)]
        var open = 2
        var buf = [UInt8](repeating: 0, count: 65536)
        var callerGone = false
        while open > 0 {
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; break }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    Sys.close(fds[i].fd); fds[i].fd = -1; open -= 1
                    if i == 0 && !callerGone { try? stream.send(.stdout([])) }
                    continue
                }
                guard !callerGone else { continue }
                let chunk = Array(buf[0..<n])
                do { try stream.send(i == 0 ? .stdout(chunk) : .stderr(chunk)) } catch { callerGone = true }
            }
        }
        for f in fds where f.fd >= 0 { Sys.close(f.fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if !callerGone { try? stream.send(.exitCode(DataStream.exitStatus(waitStatus: status))) }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// The caller's STDIN until EOF (at most inProcessStdinLimit bytes), then
    /// the handler's answer as STDOUT, EOF and EXIT_CODE.
    private func runInProcess(_ handler: InProcess, _ stream: inout QrexecStream, channelFD: Int32, service: String,
                              source: String, requestedTarget: String) {
        var input: [UInt8] = []
        watchStdin(channelFD)
        defer { _ = unwatchStdin(channelFD) }
        reading: while true {
            guard let m = try? stream.receive() else {
                let cut = !unwatchStdin(channelFD)
                logger.info("dom0 service \(service) from \(source): \(cut ? "stdin not complete within \(stdinDeadline) s" : "channel closed before stdin EOF")")
                return
            }
            switch DataStream.event(m, incoming: .clientToService) {
            case .data(let b):
                input += b
                if input.count > Self.inProcessStdinLimit {
                    try? stream.send(.stderr(Array("odysseyd: \(service): input over \(Self.inProcessStdinLimit) bytes\n".utf8)))
                    try? stream.send(.exitCode(125))
                    return
                }
            case .eof: break reading
            default: continue
            }
        }
        guard unwatchStdin(channelFD) else { return }   // cut at the deadline just now
        let out: [UInt8], code: Int32
        switch handler(source, requestedTarget, service, input) {
        case .bytes(let o, let c): (out, code) = (o, c)
        case .stream(let src): return pump(src, into: &stream, channel: channelFD)
        }
        var i = 0
        while i < out.count {
            let end = min(out.count, i + QrexecVersion.maxDataChunk(stream.version ?? 3))
            guard (try? stream.send(.stdout(Array(out[i..<end])))) != nil else { return }
            i = end
        }
        try? stream.send(.stdout([]))
        try? stream.send(.exitCode(code))
    }

    /// Streams `src` to the caller as STDOUT until `src` ends (then EOF and
    /// exit 0) or the caller hangs up (its stdin is done, so anything readable
    /// on the channel now means it left).
    private func pump(_ src: Int32, into stream: inout QrexecStream, channel: Int32) {
        defer { shutdown(src, Int32(SHUT_RDWR)); Sys.close(src) }
        var buf = [UInt8](repeating: 0, count: 65536)
        let chunk = QrexecVersion.maxDataChunk(stream.version ?? 3)
        while true {
            var p = [pollfd(fd: src, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: channel, events: Int16(POLLIN), revents: 0)]   // EOF or data: the caller left
            if poll(&p, 2, -1) < 0 { if errno == EINTR { continue }; return }
            if p[1].revents != 0 { return }
            guard p[0].revents != 0 else { continue }
            let n = read(src, &buf, min(buf.count, chunk))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                try? stream.send(.stdout([]))
                try? stream.send(.exitCode(0))
                return
            }
            guard (try? stream.send(.stdout(Array(buf[0..<n])))) != nil else { return }
        }
    }

    static func spawn(_ argv: [String], _ env: [String], stdin: Int32, stdout: Int32, stderr: Int32) -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { for p in cargs + cenv { free(p) } }
        var pid: pid_t = 0
        let rc = Sys.withCleanSpawnAttributes { attr in posix_spawn(&pid, argv[0], &actions, &attr, &cargs, &cenv) }
        return rc == 0 ? pid : nil
    }
}

enum PolicyArgument {
    /// The argument of `SERVICE+ARG` without its '+' ("" when none).
    static func of(_ call: String) -> String {
        guard let plus = call.firstIndex(of: "+") else { return "" }
        return String(call[call.index(after: plus)...])
    }
}
#endif
