// The caller's side of one data channel (what `qrexec-client` does for
// `qvm-run`): HELLO, local stdin to STDIN messages (EOF as a zero-length
// message), STDOUT/STDERR to local fds, until EXIT_CODE. One thread, one
// poll loop, the channel socket never blocks, so neither side can deadlock
// the other however much each sends.
//
// The channel must be a stream socket (a socket vchan's fd, or one end of a
// socketpair an fd-passing vchan handed over): this is the code `ody run`
// runs on the fd the daemon passes it, and what the daemon runs itself when
// it pumps a session.
#if canImport(Glibc)
import Glibc
#endif
import VchanSocketCore

public enum DataClient {
    /// Runs the session to its end and returns the service's exit status.
    /// `stdin` nil: EOF is sent at once. Local fds are not closed.
    ///
    /// Data takes the zero-copy path where it can (DataPath.swift): stdin
    /// (a file or a pipe) is spliced into a pipe of our own, whose bytes are
    /// announced and spliced to the channel (our own, so the bytes announced
    /// in a header cannot be taken by another reader of stdin); STDOUT
    /// bodies are spliced into stdout, directly when it is a pipe, else
    /// through an output stage. A terminal as stdin, or a refused splice,
    /// takes the copying path.
    public static func run(channel fd: Int32, stdin: Int32?, stdout: Int32, stderr: Int32,
                           ours: UInt32 = QrexecVersion.current) throws(QrexecError) -> Int32 {
        var reader = MessageReader(direction: .serviceToClient, ours: ours)
        var out = OutBuffer()
        var stdinSender = SpliceSender(type: .dataStdin)
        var staging = stdin.flatMap { Splice.isPipe($0) || Splice.isRegularFile($0) ? Splice.makePipe() : nil }
        defer { if let p = staging { close(p.r); close(p.w) } }
        var staged = (in: 0, out: 0)  // bytes in the stdin staging pipe not yet announced, in the output stage
        // STDOUT bodies are spliced into stdout when it is a pipe, else into a
        // pipe of our own (splice needs a pipe on one side) emptied into
        // stdout after each move: /dev/null then costs no copy at all, a
        // file the page-cache copy write() would make.
        let outStage = stdout >= 0 && !Splice.isPipe(stdout) ? Splice.makePipe() : nil
        defer { if let p = outStage { close(p.r); close(p.w) } }
        var spliceOut = stdout >= 0
        var stageCopies = false       // stdout refused splice: the stage is emptied with read/write
        var stdinOpen = stdin != nil
        var stdinEOFQueued = false
        var peerGone = false          // the service stopped reading (it may still write)
        var stdoutOK = true, stderrOK = true
        var buf = [UInt8](repeating: 0, count: 65536)
        let highWater = 256 * 1024
        let stagingSize = 1 << 20
        // splice() to the socket must not block the loop.
        let channelFlags = Splice.setNonBlocking(fd)
        defer { Splice.restoreFlags(fd, channelFlags) }
        Splice.growSendBuffer(fd)

        /// Sends what is queued, then the staged stdin as data messages,
        /// until the channel is full or nothing is left.
        func sendStdin() throws(QrexecError) {
            while !peerGone {
                switch try stdinSender.drain(from: staging?.r ?? -1, to: fd, out: &out) {
                case .peerGone: peerGone = true; return
                case .blocked: return
                case .done: break
                }
                guard staged.in > 0, let v = reader.version else { return }
                let n = min(staged.in, QrexecVersion.maxDataChunk(v))
                stdinSender.announce(n, into: &out)
                staged.in -= n
            }
        }

        /// Empties the output stage into stdout, blocking as writes to stdout
        /// always did. A stdout that refuses splice (EINVAL) gets the staged
        /// bytes with read/write; bytes a failed stdout cannot take are
        /// dropped (stdoutOK false), as the copying path drops them.
        func drainStage() {
            guard let st = outStage else { return }
            while staged.out > 0 {
                if stdoutOK && !stageCopies {
                    switch Splice.move(from: st.r, to: stdout, max: staged.out) {
                    case .moved(let n): staged.out -= n; continue
                    case .wouldBlock: FD.waitFor(stdout, Int16(POLLOUT)); continue   // a non-blocking stdout
                    case .failed(EINVAL): stageCopies = true
                    case .peerGone, .end, .failed: stdoutOK = false
                    }
                }
                let got = buf.withUnsafeMutableBytes { Glibc.read(st.r, $0.baseAddress!, min(staged.out, $0.count)) }
                if got <= 0 { staged.out = 0; return }   // the stage holds staged.out bytes: not reached
                staged.out -= got
                if stdoutOK {
                    stdoutOK = buf.withUnsafeBytes { (try? FD.writeAll(stdout, UnsafeRawBufferPointer(rebasing: $0[0..<got]))) != nil }
                }
            }
        }

        /// Reads the channel until it is empty; the exit status once it arrived.
        func readChannel() throws(QrexecError) -> Int32? {
            defer { drainStage() }   // nothing stays staged while we wait or after the end
            for _ in 0..<64 {
                if spliceOut && stdoutOK {
                    var moved = 0
                    let progress = SpliceReceiver.pump(&reader, .dataStdout, from: fd, to: outStage?.w ?? stdout, moved: &moved)
                    if outStage != nil {
                        // The stage collects several bodies per drain (fewer syscalls).
                        staged.out += moved
                        if progress != .done || staged.out >= stagingSize / 2 { drainStage() }
                    }
                    if !stdoutOK { reader.discardRestOfBody(); continue }
                    switch progress {
                    case .done: break
                    case .socketEmpty: return nil
                    case .pipeFull:   // stdout blocks, as writeAll does (a stage was just emptied)
                        if outStage == nil { FD.waitFor(stdout, Int16(POLLOUT)) }
                        continue
                    case .pipeGone: stdoutOK = false; reader.discardRestOfBody()
                    case .closed: throw .closed
                    case .unsupported: spliceOut = false
                    }
                }
                let n = reader.receive(from: fd)
                if n == 0 || (n < 0 && errno == ECONNRESET) { throw .closed }   // no EXIT_CODE: qrexec failure
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { return nil }
                    throw .io("recv", errno: errno)
                }
                while let m = try reader.next() {
                    switch DataStream.event(m, incoming: .serviceToClient) {
                    case .data(let b):
                        drainStage()   // staged bytes come first
                        if stdoutOK { stdoutOK = (try? FD.writeAll(stdout, b)) != nil }
                    case .stderr(let b):
                        drainStage()   // a terminal shows both streams in the service's order
                        if stderrOK { stderrOK = (try? FD.writeAll(stderr, b)) != nil }
                    case .exit(let code):
                        _ = try? out.flush(to: fd)
                        return code
                    case .hello, .eof, .ignored: break
                    }
                }
            }
            return nil
        }

        /// One readable stdin: spliced into the staging pipe, or read and queued.
        func takeStdin(_ s: Int32) throws(QrexecError) {
            if let p = staging {
                switch Splice.move(from: s, to: p.w, max: stagingSize) {
                case .moved(let n): staged.in += n; try sendStdin(); return
                case .end: stdinOpen = false; return
                case .wouldBlock: return
                case .peerGone, .failed:
                    close(p.r); close(p.w); staging = nil   // read() below says what it was
                }
            }
            let chunk = min(buf.count, QrexecVersion.maxDataChunk(reader.version ?? ours))
            let n = buf.withUnsafeMutableBytes { Glibc.read(s, $0.baseAddress!, chunk) }
            if n > 0 {
                buf.withUnsafeBytes { out.appendData(.dataStdin, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                stdinOpen = false
            }
        }

        out.append(.hello(PeerInfo(version: ours)))
        while true {
            let stdinIdle = staged.in == 0 && stdinSender.owed == 0
            if reader.version != nil && !stdinOpen && stdinIdle && !stdinEOFQueued {
                out.append(.stdin([])); stdinEOFQueued = true
            }
            if peerGone { out = OutBuffer(); stdinSender.abandon(); staged.in = 0 }
            let wantOut = !out.isEmpty || stdinSender.owed > 0 || (staged.in > 0 && reader.version != nil)
            var fds = [pollfd(fd: fd, events: Int16(POLLIN) | (wantOut ? Int16(POLLOUT) : 0), revents: 0)]
            let wantStdin = stdinOpen && reader.version != nil && out.count < highWater && !peerGone && stdinIdle
            if wantStdin, let s = stdin { fds.append(pollfd(fd: s, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), -1)
            if rc < 0 { if errno == EINTR { continue }; throw .io("poll", errno: errno) }

            if fds[0].revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 && wantOut {
                try sendStdin()
            }
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                if let code = try readChannel() { return code }
            }
            if fds.count > 1 && fds[1].revents != 0, let s = stdin {
                try takeStdin(s)
            }
        }
    }
}
