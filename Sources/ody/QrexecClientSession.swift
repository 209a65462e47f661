// One qrexec-client session (QrexecClientCompat): the data channel from
// odysseyd, with Qubes' extras around DataClient, each a pipe and a thread
// so the session code stays the one `ody run` uses:
//   -p DATA   a pipe that carries DATA, then our stdin (or the local command's output)
//   -t / -T   the command's stdout / stderr through a filter that replaces
//             bytes a terminal would interpret (Qubes' rule) by '_'
//   -l CMD    /bin/sh -c CMD with its stdin and stdout wired to the command's
import Host
import Qrexec
#if canImport(Glibc)
import Glibc
#endif

enum CompatSession {
    /// Runs the session; the command's exit status.
    static func run(socket: String, domain: String, user: String, command: String,
                    options o: QrexecClientCompat.Options) throws -> Int32 {
        var local: (pid: pid_t, toIt: Int32, fromIt: Int32)?
        if let cmd = o.localCommand {
            guard !cmd.hasPrefix("QUBESRPC ") else { throw CompatError("a local service (-l 'QUBESRPC ...') is not supported; give a command") }
            local = try spawnLocal(cmd)
        }
        guard let channel = try RunClient.request(socket: socket, domain: domain, user: user, command: command, passIO: true) else {
            throw CompatError("odysseyd sent no data channel")
        }
        defer { close(channel) }

        var stdinFD: Int32 = local?.fromIt ?? 0
        if let prefix = o.prefix { stdinFD = try prefixed(prefix, then: stdinFD) }
        var waits: [Int32] = []
        var stdoutFD: Int32 = local?.toIt ?? 1, stderrFD: Int32 = 2
        if o.replaceStdout { let (w, done) = try filtered(to: stdoutFD); stdoutFD = w; waits.append(done) }
        if o.replaceStderr { let (w, done) = try filtered(to: 2); stderrFD = w; waits.append(done) }

        let status: Int32
        do { status = try DataClient.run(channel: channel, stdin: stdinFD, stdout: stdoutFD, stderr: stderrFD) } catch {
            throw CompatError("qrexec session with \(domain) failed: \(error)")
        }
        // The filters end when their pipes do; the local command when its stdin does.
        if o.replaceStdout { close(stdoutFD) }
        if o.replaceStderr { close(stderrFD) }
        for done in waits { var b: UInt8 = 0; while read(done, &b, 1) > 0 {}; close(done) }
        if let l = local {
            close(l.toIt)
            var st: Int32 = 0
            while waitpid(l.pid, &st, 0) < 0 && errno == EINTR {}
        }
        return status
    }

    struct CompatError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func makePipe() throws -> (r: Int32, w: Int32) {
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { throw CompatError("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(p[0], F_SETFD, FD_CLOEXEC); _ = fcntl(p[1], F_SETFD, FD_CLOEXEC)
        return (p[0], p[1])
    }

    /// A pipe that yields `prefix`, then everything `source` gives. The
    /// copying thread is not waited for: a terminal as stdin may never end.
    static func prefixed(_ prefix: [UInt8], then source: Int32) throws -> Int32 {
        let p = try makePipe()
        Threads.detach {
            defer { close(p.w) }
            guard writeAll(p.w, prefix) else { return }
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(source, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 || !writeAll(p.w, Array(buf[0..<n])) { return }
            }
        }
        return p.r
    }

    /// A pipe whose bytes reach `sink` with Qubes' replacement applied; the
    /// second descriptor reads EOF once everything was written.
    static func filtered(to sink: Int32) throws -> (write: Int32, done: Int32) {
        let p = try makePipe(), done = try makePipe()
        Threads.detach {
            defer { close(p.r); close(done.w) }
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(p.r, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                _ = writeAll(sink, replaceUnsafeBytes(buf[0..<n]))
            }
        }
        return (p.w, done.r)
    }

    /// Qubes' rule (qrexec's -t/-T): anything but printable ASCII, tab, LF,
    /// CR, backspace and bell becomes '_' (escape sequences cannot reach the
    /// terminal).
    static func replaceUnsafeBytes(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.map { c in
            (c >= 0x20 && c <= 0x7e) || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x08 || c == 0x07 ? c : 0x5f
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// /bin/sh -c CMD with its stdin fed by `toIt` and its stdout read from `fromIt`.
    static func spawnLocal(_ cmd: String) throws -> (pid: pid_t, toIt: Int32, fromIt: Int32) {
        let input = try makePipe(), output = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.r, 0)
        posix_spawn_file_actions_adddup2(&actions, output.w, 1)
        let argv = ["/bin/sh", "-c", cmd]
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for c in cargs { free(c) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cargs, environ)
        close(input.r); close(output.w)
        guard rc == 0 else {
            close(input.w); close(output.r)
            throw CompatError("cannot run the local command: \(String(cString: strerror(rc)))")
        }
        return (pid, input.w, output.r)
    }
}
