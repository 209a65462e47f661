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

public enum DataClient {
    /// Runs the session to its end and returns the service's exit status.
    /// `stdin` nil: EOF is sent at once. Local fds are not closed.
    public static func run(channel fd: Int32, stdin: Int32?, stdout: Int32, stderr: Int32,
                           ours: UInt32 = QrexecVersion.current) throws(QrexecError) -> Int32 {
        var reader = MessageReader(direction: .serviceToClient, ours: ours)
        var out = OutBuffer()
        out.append(.hello(PeerInfo(version: ours)))
        var stdinOpen = stdin != nil
        var stdinEOFQueued = false
        var peerGone = false          // the service stopped reading (it may still write)
        var stdoutOK = true, stderrOK = true
        var buf = [UInt8](repeating: 0, count: 65536)
        let highWater = 256 * 1024

        while true {
            if reader.version != nil && !stdinOpen && !stdinEOFQueued {
                out.append(.stdin([])); stdinEOFQueued = true
            }
            if peerGone { out = OutBuffer() }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN) | (out.isEmpty ? 0 : Int16(POLLOUT)), revents: 0)]
            let wantStdin = stdinOpen && reader.version != nil && out.count < highWater && !peerGone
            if wantStdin, let s = stdin { fds.append(pollfd(fd: s, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), -1)
            if rc < 0 { if errno == EINTR { continue }; throw .io("poll", errno: errno) }

            if fds[0].revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 && !out.isEmpty {
                if try !out.flush(to: fd) { peerGone = true }
            }
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 || (n < 0 && errno == ECONNRESET) { throw .closed }   // no EXIT_CODE: qrexec failure
                if n < 0 {
                    if errno != EAGAIN && errno != EINTR { throw .io("recv", errno: errno) }
                } else {
                    buf.withUnsafeBytes { reader.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    while let m = try reader.next() {
                        switch DataStream.event(m, incoming: .serviceToClient) {
                        case .data(let b): if stdoutOK { stdoutOK = (try? FD.writeAll(stdout, b)) != nil }
                        case .stderr(let b): if stderrOK { stderrOK = (try? FD.writeAll(stderr, b)) != nil }
                        case .exit(let code):
                            _ = try? out.flush(to: fd)
                            return code
                        case .hello, .eof, .ignored: break
                        }
                    }
                }
            }
            if fds.count > 1 && fds[1].revents != 0, let s = stdin {
                let chunk = min(buf.count, QrexecVersion.maxDataChunk(reader.version ?? ours))
                let n = buf.withUnsafeMutableBytes { Glibc.read(s, $0.baseAddress!, chunk) }
                if n > 0 {
                    buf.withUnsafeBytes { out.appendData(.dataStdin, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    stdinOpen = false
                }
            }
        }
    }
}
