// One command the host asked for (MSG_EXEC_CMDLINE / MSG_JUST_EXEC), on its
// own thread: connect the data channel named by connect_domain/connect_port
// (the agent is its client) or take the one passed with the message, HELLO,
// run `/bin/sh -c COMMAND` as the user (or, for `QUBESRPC SERVICE+ARG SOURCE`,
// the service: see Services.swift), and
// stream stdin/stdout/stderr and the exit status. The data socket is never
// written blocking: one poll loop with bounded buffers in both directions, so
// no amount of output or input can deadlock the two sides.
#if canImport(Glibc)
import Glibc
#endif
import CAgentShim
import Qrexec
import VchanSocketCore

enum Session {
    static let connectTimeoutNs: Int64 = 5_000_000_000
    static let highWater = 256 * 1024
    /// Exit status for failures of qrexec itself (Qubes: 125).
    static let qrexecFailure: Int32 = 125

    /// A session between its opening (channel, our HELLO, a plain command
    /// already spawned) and the caller's HELLO.
    struct Opened {
        let p: ExecParams
        let justExec: Bool
        let ch: SocketChannel
        let stream: QrexecStream
        let early: Result<Child, StartFailure>?

        /// Nothing more will happen (no thread for it): the command goes, the
        /// channel closes, the host hears the session is over.
        func abandon() {
            if case .success(let c)? = early { c.abandon() }
            ch.close()
            Session.terminated(p)
        }
    }

    /// The whole session on the calling thread.
    static func run(_ p: ExecParams, justExec: Bool, passedFD: Int32?, _ cfg: AgentConfig) {
        guard let o = begin(p, justExec: justExec, passedFD: passedFD, cfg) else { return }
        serve(o, cfg)
    }

    /// Where a data channel came with the message (nothing to dial, nothing
    /// that blocks), the control thread opens the session itself and spawns a
    /// plain command before the session's thread takes over (ThreadPool:
    /// a parked one; a new thread costs a millisecond under TCG). Qubes'
    /// agent forks from its main loop the same way. Otherwise the session
    /// gets its thread first (a dial may wait for the host).
    static func start(_ p: ExecParams, justExec: Bool, passedFD: Int32?, _ cfg: AgentConfig) {
        guard passedFD != nil else {
            if !ThreadPool.sessions.run({ run(p, justExec: justExec, passedFD: nil, cfg) }) {
                Log.say("cannot start a thread for a command; dropped")
                terminated(p)
            }
            return
        }
        guard let o = begin(p, justExec: justExec, passedFD: passedFD, cfg) else { return }
        if !ThreadPool.sessions.run({ serve(o, cfg) }) {
            Log.say("cannot start a thread for a command; dropped")
            o.abandon()
        }
    }

    /// Tells the host the session's port is free again.
    static func terminated(_ p: ExecParams) {
        try? ControlWriter.shared.send(.connectionTerminated(connectDomain: p.connectDomain, connectPort: p.connectPort))
    }

    /// The data channel (passed, or dialed), our HELLO, and a plain command
    /// spawned at once; nil when the channel failed (logged, host told).
    static func begin(_ p: ExecParams, justExec: Bool, passedFD: Int32?, _ cfg: AgentConfig) -> Opened? {
        let port = p.connectPort
        let ch: SocketChannel
        if let passedFD {
            ch = SocketChannel.adopt(connectedFD: passedFD)
        } else if p.connectDomain == 0 {
            do { ch = try cfg.dialer.dial(domain: cfg.domain, port: port, timeoutNs: connectTimeoutNs) } catch {
                Log.say("data channel \(cfg.dialer.describe(cfg.domain, port: port)): \(error)")
                terminated(p)
                return nil
            }
        } else {
            // Channels to other domains come as passed descriptors (issue 5).
            Log.say("data channel to domain id \(p.connectDomain) port \(port) without a passed descriptor; dropped")
            terminated(p)
            return nil
        }
        let stream = QrexecStream(fd: ch.fd, incoming: .clientToService)
        do { try stream.sendHello() } catch {
            Log.say("data channel port \(port): sending MSG_HELLO: \(error)")
            ch.close()
            terminated(p)
            return nil
        }
        // The channel first (our HELLO is then on its way), then a plain
        // command starts at once, beside the caller's HELLO (a round trip of
        // a VM's channel, milliseconds under TCG; the spawn is as long
        // again). Nothing of it reaches the caller before that HELLO, and it
        // is killed if the HELLO never comes. Anything else (services,
        // JUST_EXEC, errors) waits for the HELLO, as before.
        var early: Result<Child, StartFailure>?
        if !justExec, let (user, command) = try? Names.splitUserCommand(p.cmdline), !ServiceCommand.isServiceCall(command),
           let entry = Users.lookup(user), geteuid() == 0 || entry.uid == geteuid() {
            let argv: [[UInt8]] = [Array("/bin/sh".utf8), Array("-c".utf8), command]
            early = startChild([("/bin/sh", argv)], env: baseEnvironment(entry), entry, geteuid() == 0)
        }
        return Opened(p: p, justExec: justExec, ch: ch, stream: stream, early: early)
    }

    /// From the caller's HELLO to the exit status, on the session's thread.
    static func serve(_ o: Opened, _ cfg: AgentConfig) {
        let p = o.p, justExec = o.justExec, port = p.connectPort
        defer { terminated(p) }
        defer { o.ch.close() }
        var stream = o.stream
        let fd = o.ch.fd
        guard let version = awaitHello(&stream, port: port) else {
            if case .success(let c)? = o.early { c.abandon() }
            return
        }
        switch o.early {
        case .success(let c)?: return pumpChild(c, fd: fd, version: version)
        case .failure(let f)?: return fail(stream, f.status(notRunnable: 127), f.message("/bin/sh"))
        case nil: break
        }

        let user: String, command: [UInt8]
        do { (user, command) = try Names.splitUserCommand(p.cmdline) } catch {
            return fail(stream, qrexecFailure, "\(error)")
        }
        if ServiceCommand.isServiceCall(command) {
            return Services.run(command, user: user, justExec: justExec, stream: stream, fd: fd, version: version, cfg)
        }
        guard let entry = Users.lookup(user) else { return fail(stream, qrexecFailure, "no user \"\(user)\" in /etc/passwd") }
        let setIDs = geteuid() == 0
        if !setIDs && entry.uid != geteuid() {
            return fail(stream, qrexecFailure, "cannot run as \(user): the agent does not run as root")
        }
        let argv: [[UInt8]] = [Array("/bin/sh".utf8), Array("-c".utf8), command]
        runChild([("/bin/sh", argv)], env: baseEnvironment(entry), entry, setIDs, justExec: justExec, notRunnable: 127,
                 stream: stream, fd: fd, version: version)
    }

    /// Waits (at most 10 s: a caller that never says HELLO must not hold
    /// this thread forever) for the caller's HELLO; the negotiated version,
    /// or nil (logged) when it did not come or was not a HELLO.
    static func awaitHello(_ stream: inout QrexecStream, port: UInt32) -> UInt32? {
        var hp = pollfd(fd: stream.readFD, events: Int16(POLLIN), revents: 0)
        while poll(&hp, 1, 10_000) < 0 && errno == EINTR {}
        guard hp.revents != 0 else {
            Log.say("data channel port \(port): no MSG_HELLO from the caller within 10 s; dropped")
            return nil
        }
        do { return try stream.receiveHello() } catch {
            Log.say("data channel port \(port): handshake failed: \(error)")
            return nil
        }
    }

    /// Tells the caller why nothing runs: a line on its stderr, then `status`.
    static func fail(_ stream: QrexecStream, _ status: Int32, _ message: String) {
        Log.say(message)
        // One STDERR chunk at most (a message may quote a 65000-byte service name).
        try? stream.send(.stderr(Array(("odyssey-agent: " + message).utf8.prefix(4000)) + [0x0a]))
        try? stream.send(.exitCode(status))
    }

    /// What every command and service starts with (no NSS, no login session).
    static func baseEnvironment(_ entry: UserEntry) -> [[UInt8]] {
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.odyssey/bin:/.odyssey/addons/bin",   // last: ody-call, add-on commands
            "HOME=\(entry.home)", "USER=\(entry.name)", "LOGNAME=\(entry.name)", "SHELL=\(entry.shell)",
        ].map { Array($0.utf8) }
    }

    /// Runs the first of `programs` that execs (the next one is tried only
    /// when exec says ENOEXEC: a script without `#!`, which a shell would run
    /// with /bin/sh) with its stdio on the data channel, and sends its exit
    /// status. `notRunnable`: the status when none can be started.
    /// A started command: its pipes and its note (written by the Reaper when it exits).
    struct Child {
        let pid: pid_t
        let stdinW: Int32, stdoutR: Int32, stderrR: Int32
        let noteR: Int32, noteW: Int32

        /// The caller never came: the command goes, reaped before the thread goes on.
        func abandon() {
            kill(-pid, SIGKILL)
            var b: UInt8 = 0
            while read(noteR, &b, 1) < 0 && errno == EINTR {}
            Reaper.shared.forget(pid)
            for f in [stdinW, stdoutR, stderrR, noteR, noteW] { close(f) }
        }
    }

    enum StartFailure: Error {
        case pipe(Int32), spawn(path: String, Int32)
        func status(notRunnable: Int32) -> Int32 { if case .spawn = self { return notRunnable }; return qrexecFailure }
        func message(_ name: String) -> String {
            switch self {
            case .pipe(let e): "pipe: \(String(cString: strerror(e)))"
            case .spawn(let path, let e): "cannot run \(path): \(String(cString: strerror(e)))"
            }
        }
    }

    /// Starts the first of `programs` that execs (the next one is tried only
    /// when exec says ENOEXEC: a script without `#!`, which a shell would run
    /// with /bin/sh) with its stdio on fresh pipes.
    static func startChild(_ programs: [(path: String, argv: [[UInt8]])], env: [[UInt8]], _ entry: UserEntry,
                           _ setIDs: Bool) -> Result<Child, StartFailure> {
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], note: [Int32] = [-1, -1]
        guard agent_pipe_cloexec(&inPipe) == 0, agent_pipe_cloexec(&outPipe) == 0, agent_pipe_cloexec(&errPipe) == 0,
              agent_pipe_cloexec(&note) == 0 else {
            let e = errno
            for f in inPipe + outPipe + errPipe + note where f >= 0 { close(f) }
            return .failure(.pipe(e))
        }
        var pid: pid_t = -1
        var last = SpawnError(code: ENOENT)
        for (i, prog) in programs.enumerated() {
            switch spawn(prog.path, prog.argv, env, entry, setIDs, stdin: inPipe[0], stdout: outPipe[1], stderr: errPipe[1]) {
            case .success(let p): pid = p
            case .failure(let e): last = e
            }
            if pid > 0 || last.code != ENOEXEC || i == programs.count - 1 { break }
        }
        guard pid > 0 else {
            for f in inPipe + outPipe + errPipe + note { close(f) }
            return .failure(.spawn(path: programs.first?.path ?? "?", last.code))
        }
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        Reaper.shared.register(pid, notifyFD: note[1])
        return .success(Child(pid: pid, stdinW: inPipe[1], stdoutR: outPipe[0], stderrR: errPipe[0], noteR: note[0], noteW: note[1]))
    }

    /// A started command's stdio over the channel, then its exit status.
    static func pumpChild(_ c: Child, fd: Int32, version: UInt32) {
        var io = PumpState(stdinW: c.stdinW, stdoutR: c.stdoutR, stderrR: c.stderrR, noteR: c.noteR,
                           pidFD: agent_pidfd_open(c.pid), pid: c.pid)
        defer { if io.pidFD >= 0 { close(io.pidFD) } }
        _ = fcntl(c.stdinW, F_SETFL, fcntl(c.stdinW, F_GETFL) | O_NONBLOCK)
        pump(fd: fd, version: version, &io)
        if io.exitStatus == nil { Reaper.shared.forget(c.pid) }
        for f in [io.stdinW, io.stdoutR, io.stderrR] where f >= 0 { close(f) }
        close(c.noteR); close(c.noteW)
    }

    /// Runs `programs` (see startChild) for a caller whose HELLO was read,
    /// and sends its exit status; JUST_EXEC: stdio on /dev/null, status 0
    /// once it started. `notRunnable`: the status when none can be started.
    static func runChild(_ programs: [(path: String, argv: [[UInt8]])], env: [[UInt8]], _ entry: UserEntry, _ setIDs: Bool,
                         justExec: Bool, notRunnable: Int32, stream: QrexecStream, fd: Int32, version: UInt32) {
        if justExec {
            let name = programs.first?.path ?? "?"
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { if null >= 0 { close(null) } }
            var last = SpawnError(code: ENOENT)
            for (i, prog) in programs.enumerated() {
                switch spawn(prog.path, prog.argv, env, entry, setIDs, stdin: null, stdout: null, stderr: null) {
                case .success: try? stream.send(.exitCode(0)); return   // started; its end is reaped and not reported
                case .failure(let e): last = e
                }
                if last.code != ENOEXEC || i == programs.count - 1 { break }
            }
            return fail(stream, notRunnable, "cannot run \(name): \(String(cString: strerror(last.code)))")
        }
        switch startChild(programs, env: env, entry, setIDs) {
        case .failure(let f): fail(stream, f.status(notRunnable: notRunnable), f.message(programs.first?.path ?? "?"))
        case .success(let c): pumpChild(c, fd: fd, version: version)
        }
    }

    static func spawn(_ path: String, _ argv: [[UInt8]], _ env: [[UInt8]], _ u: UserEntry, _ setIDs: Bool,
                      stdin: Int32, stdout: Int32, stderr: Int32) -> Result<pid_t, SpawnError> {
        let a = CStringArray(argv), e = CStringArray(env)
        defer { a.free(); e.free() }
        var err: Int32 = 0
        let groups = u.groups.map { gid_t($0) }
        let pid = a.pointers.withUnsafeBufferPointer { ap in
            e.pointers.withUnsafeBufferPointer { ep in
                groups.withUnsafeBufferPointer { gp in
                    agent_spawn(path, ap.baseAddress, ep.baseAddress, stdin, stdout, stderr,
                                setIDs ? 1 : 0, uid_t(u.uid), gid_t(u.gid), gp.baseAddress, Int32(gp.count), u.home, &err)
                }
            }
        }
        return pid > 0 ? .success(pid) : .failure(SpawnError(code: err))
    }

    struct PumpState {
        var stdinW: Int32
        var stdoutR: Int32
        var stderrR: Int32
        var noteR: Int32
        /// The command's pidfd (-1: none; the note alone tells its end).
        var pidFD: Int32 = -1
        /// The command's process group; 0 for a socket service (no process:
        /// stdinW and stdoutR are the service's socket, exitStatus preset).
        var pid: pid_t
        var exitStatus: Int32?
    }

    /// The service side of the data channel until the command's exit status
    /// was sent (or the caller went away).
    ///
    /// Data bodies take the zero-copy path when the service's stdio are pipes
    /// (DataPath.swift): STDIN bodies are spliced from the channel into the
    /// stdin pipe, and stdout bytes are announced (FIONREAD: only the agent
    /// reads that pipe) and spliced from the pipe to the channel. A socket
    /// service, or a kernel that refuses a splice, uses the copying path.
    static func pump(fd: Int32, version: UInt32, _ s: inout PumpState) {
        var reader = MessageReader(direction: .clientToService, version: version)
        var out = OutBuffer()
        var stdoutSender = SpliceSender(type: .dataStdout)
        var toChild: [UInt8] = []
        var toChildHead = 0
        var stdinEOF = false
        var callerGone = false
        var spliceIn = Splice.isPipe(s.stdinW), spliceOut = Splice.isPipe(s.stdoutR)
        var stdinFull = false         // a spliced body waits for room in the stdin pipe
        let chunk = QrexecVersion.maxDataChunk(version)
        var buf = [UInt8](repeating: 0, count: max(chunk, 65536))
        // splice() to the socket must not block the loop.
        let channelFlags = Splice.setNonBlocking(fd)
        defer { Splice.restoreFlags(fd, channelFlags) }
        Splice.growSendBuffer(fd)

        func hangUp() {
            callerGone = true
            if s.pid > 0 {
                kill(-s.pid, SIGHUP)
                kill(-s.pid, SIGCONT)
            } else if s.stdinW >= 0 {
                shutdown(s.stdinW, Int32(SHUT_RDWR))   // a socket service sees its caller go
            }
        }
        func dropOutput() { out = OutBuffer(); stdoutSender.abandon() }
        func closeStdin() {
            close(s.stdinW); s.stdinW = -1; toChild.removeAll(); toChildHead = 0; stdinEOF = true; stdinFull = false
        }
        /// Sends what is queued (and the owed part of a spliced body).
        func flushOut() {
            guard !callerGone else { return }
            let p = try? stdoutSender.drain(from: s.stdoutR, to: fd, out: &out)
            if p == nil || p == .peerGone { hangUp(); dropOutput() }
        }
        /// The caller closed the channel (or it broke) without waiting for the exit status.
        func channelClosed() {
            if s.exitStatus == nil { hangUp() } else { callerGone = true }
            dropOutput()
        }
        /// Reads the channel until it is empty, a spliced body waits for the
        /// stdin pipe, or copied stdin waits to be written (bounded: the
        /// service's output must get its turn).
        func readChannel() {
            for _ in 0..<64 {
                if spliceIn && s.stdinW >= 0 && !stdinEOF && toChild.count == toChildHead {
                    var moved = 0
                    switch SpliceReceiver.pump(&reader, .dataStdin, from: fd, to: s.stdinW, moved: &moved) {
                    case .done: break
                    case .socketEmpty: return
                    case .pipeFull: stdinFull = true; return
                    case .pipeGone: reader.discardRestOfBody(); closeStdin()
                    case .closed: return channelClosed()
                    case .unsupported: spliceIn = false
                    }
                }
                let n = reader.receive(from: fd)
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return channelClosed() }
                if n < 0 { return }
                do {
                    while let m = try reader.next() {
                        switch DataStream.event(m, incoming: .clientToService) {
                        case .data(let b): if s.stdinW >= 0 && !stdinEOF { toChild += b }
                        case .eof: stdinEOF = true
                        default: break   // caller STDERR/EXIT_CODE: ignored (QSB-087)
                        }
                    }
                } catch {
                    Log.say("malformed data message from the caller: \(error); command killed")
                    if s.pid > 0 { kill(-s.pid, SIGKILL) }
                    hangUp(); dropOutput()
                    return
                }
                if toChild.count > toChildHead { return }
            }
        }
        /// Announces and splices what the stdout pipe holds (one FIONREAD),
        /// a chunk per message, until that is sent or the channel is full.
        func spliceStdout() {
            guard !callerGone, stdoutSender.owed == 0, s.stdoutR >= 0 else { return }
            // Empty although poll said readable: EOF or a spurious wake-up;
            // read() tells which (it cannot block then).
            var ready = Splice.readable(s.stdoutR) ?? 0
            if ready == 0 { return copyOutput(.dataStdout) }
            while ready > 0 && !callerGone && stdoutSender.owed == 0 {
                let n = min(ready, chunk)
                stdoutSender.announce(n, into: &out)
                ready -= n
                flushOut()
            }
        }
        /// One read of the service's stdout or stderr, queued as a message.
        func copyOutput(_ type: MessageType) {
            let rfd = type == .dataStdout ? s.stdoutR : s.stderrR
            let n = buf.withUnsafeMutableBytes { Glibc.read(rfd, $0.baseAddress!, chunk) }
            if n > 0 {
                if !callerGone { buf.withUnsafeBytes { out.appendData(type, UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                close(rfd)
                if type == .dataStdout {
                    s.stdoutR = -1
                    if !callerGone { out.append(.stdout([])) }   // EOF
                } else {
                    s.stderrR = -1
                }
            }
        }

        if spliceIn { Splice.growPipe(s.stdinW) }
        if spliceOut { Splice.growPipe(s.stdoutR) }
        while true {
            if s.stdoutR < 0 && s.stderrR < 0 && s.exitStatus != nil { break }
            if callerGone && s.exitStatus != nil { return }
            let pendingIn = toChild.count - toChildHead
            if stdinEOF && pendingIn == 0 && s.stdinW >= 0 && reader.streamable(.dataStdin) == 0 {
                shutdown(s.stdinW, Int32(SHUT_WR))   // a socket service's EOF (ENOTSOCK on a pipe: harmless)
                close(s.stdinW); s.stdinW = -1
            }
            // Nothing may be queued while a spliced stdout body is owed.
            let mayQueue = stdoutSender.owed == 0 && (out.count < highWater || callerGone)
            var fds: [pollfd] = []
            var idx = (data: -1, stdin: -1, stdout: -1, stderr: -1, note: -1)
            if !callerGone {
                var ev: Int16 = 0
                if pendingIn == 0 && !stdinFull { ev |= Int16(POLLIN) }   // also notices the caller closing after EOF
                if !out.isEmpty || stdoutSender.owed > 0 { ev |= Int16(POLLOUT) }
                idx.data = fds.count; fds.append(pollfd(fd: fd, events: ev, revents: 0))
            }
            if (pendingIn > 0 || stdinFull) && s.stdinW >= 0 { idx.stdin = fds.count; fds.append(pollfd(fd: s.stdinW, events: Int16(POLLOUT), revents: 0)) }
            if s.stdoutR >= 0 && mayQueue { idx.stdout = fds.count; fds.append(pollfd(fd: s.stdoutR, events: Int16(POLLIN), revents: 0)) }
            if s.stderrR >= 0 && mayQueue { idx.stderr = fds.count; fds.append(pollfd(fd: s.stderrR, events: Int16(POLLIN), revents: 0)) }
            if s.exitStatus == nil { idx.note = fds.count; fds.append(pollfd(fd: s.noteR, events: Int16(POLLIN), revents: 0)) }
            var pidIdx = -1
            if s.exitStatus == nil && s.pidFD >= 0 { pidIdx = fds.count; fds.append(pollfd(fd: s.pidFD, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), -1)
            if rc < 0 { if errno == EINTR { continue }; hangUp(); continue }

            if idx.data >= 0 && fds[idx.data].revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 {
                flushOut()
            }
            if idx.stdin >= 0 && fds[idx.stdin].revents != 0 {
                if stdinFull {
                    stdinFull = false
                    if fds[idx.stdin].revents & Int16(POLLERR) != 0 { reader.discardRestOfBody(); closeStdin() }
                    readChannel()
                } else {
                    let w = toChild.withUnsafeBytes { Glibc.write(s.stdinW, $0.baseAddress! + toChildHead, toChild.count - toChildHead) }
                    if w > 0 {
                        toChildHead += w
                        if toChildHead == toChild.count { toChild.removeAll(keepingCapacity: true); toChildHead = 0 }
                    } else if w < 0 && errno != EAGAIN && errno != EINTR {
                        closeStdin()   // the command closed its stdin (EPIPE): drop what is left
                    }
                }
            }
            if idx.data >= 0 && !callerGone && fds[idx.data].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                readChannel()
            }
            if idx.stdout >= 0 && fds[idx.stdout].revents != 0 {
                if spliceOut && !callerGone { spliceStdout() } else { copyOutput(.dataStdout) }
            }
            if idx.stderr >= 0 && fds[idx.stderr].revents != 0 && stdoutSender.owed == 0 { copyOutput(.dataStderr) }
            if idx.note >= 0 && fds[idx.note].revents != 0 {
                var b: UInt8 = 0
                _ = Glibc.read(s.noteR, &b, 1)
                if let st = Reaper.shared.take(s.pid) { s.exitStatus = st }
            }
            if pidIdx >= 0 && s.exitStatus == nil && fds[pidIdx].revents != 0 {
                if let st = Reaper.shared.reapNow(s.pid) { s.exitStatus = st } else {
                    close(s.pidFD); s.pidFD = -1   // readable, yet no status: leave it to the note (never spin)
                }
                // Its pipes close as it exits: take their EOFs in this turn
                // too, so the EOFs and the status leave in one write.
                // (A grandchild may still hold them open: only what is ready now.)
                func readyNow(_ fd: Int32) -> Bool {
                    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    return poll(&p, 1, 0) > 0 && p.revents != 0
                }
                if s.stdoutR >= 0 && mayQueue && readyNow(s.stdoutR) {
                    if spliceOut && !callerGone { spliceStdout() } else { copyOutput(.dataStdout) }
                }
                if s.stderrR >= 0 && mayQueue && stdoutSender.owed == 0 && readyNow(s.stderrR) { copyOutput(.dataStderr) }
            }
            let finished = s.stdoutR < 0 && s.stderrR < 0 && s.exitStatus != nil && stdoutSender.owed == 0
            if !finished && (!out.isEmpty || stdoutSender.owed > 0) { flushOut() }   // else sent with the status below
        }
        guard !callerGone, let st = s.exitStatus else { return }
        out.append(.exitCode(DataStream.exitStatus(waitStatus: st)))
        // Send everything left, blocking now (only our own output is pending).
        while !out.isEmpty {
            guard (try? out.flush(to: fd)) == true else { return }
            if out.isEmpty { break }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, -1)
        }
    }
}

struct SpawnError: Error { var code: Int32 }
