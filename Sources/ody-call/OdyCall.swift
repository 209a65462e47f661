// ody-call TARGET SERVICE[+ARG] [-- LOCAL-PROGRAM [ARGS...]]
//
// 1. Asks this domain's agent over its local socket (LocalCall, in the Qrexec
//    module) for the call: one MSG_TRIGGER_SERVICE3 with the sanitised names.
// 2. The agent forwards it to the host, which decides under policy (with the
//    source taken from the domain's own channel, never from the request).
// 3. The agent's reply is checked like any peer input: MSG_SERVICE_REFUSED
//    (exit 126), a failure reason (exit 125), or MSG_SERVICE_CONNECT with
//    exactly one stream socket attached: the data channel to the service.
// 4. ody-call is the qrexec client of that channel (DataClient: HELLO, STDIN;
//    STDOUT/STDERR/EXIT_CODE back), with its own stdin/stdout or, given a
//    LOCAL-PROGRAM, that program's stdout/stdin; the service's stderr goes
//    to ody-call's stderr. The agent is not in the data path.
#if canImport(Glibc)
import Glibc
#endif
import Qrexec

enum OdyCall {
    static let refusedStatus: Int32 = 126
    static let failureStatus: Int32 = 125
    static let usageStatus: Int32 = 2

    static let usage = """
    usage: ody-call [--socket PATH] [--[no-]filter-escape-chars[-stdout|-stderr]]
                    TARGET SERVICE[+ARG] [-- LOCAL-PROGRAM [ARGS...]]
           ody-call --help
    """

    static let help = """
    ody-call - call a qrexec service in another domain (Qubes: qrexec-client-vm)

    \(usage)

    The host decides under its qrexec policy whether this domain may call
    SERVICE (with its argument ARG) in TARGET; the policy may also redirect
    the call to another domain, ask the user, or start a disposable. The
    service's stdin and stdout are connected to ody-call's, its stderr to
    ody-call's stderr, and ody-call exits with the service's exit status.

    TARGET     a domain name, or a keyword the policy understands:
               @default (let the policy choose), @dispvm, @dispvm:TEMPLATE,
               @adminvm / dom0. At most 63 bytes of [A-Za-z0-9_.@:-]; other
               bytes are replaced by '_' before the request leaves the domain.
    SERVICE    a service name such as qubes.GetDate, optionally followed by
               +ARG (qubes.Filecopy+file.txt). Bytes outside [A-Za-z0-9_.+-]
               become '_'. The service receives ARG in the environment
               variable QREXEC_SERVICE_ARGUMENT, never on a command line.
    -- LOCAL-PROGRAM [ARGS...]
               start LOCAL-PROGRAM once the call is allowed, with its stdin
               and stdout connected to the service's stdout and stdin (its
               stderr stays ody-call's). ody-call then exits with the local
               program's status, as qrexec-client-vm does. The "--" may be
               left out.
    --filter-escape-chars, --no-filter-escape-chars
               replace (or keep) control characters such as ESC in what the
               service writes to ody-call's stdout and stderr, so a service
               cannot drive your terminal. Default: replaced on whichever of
               stdout and stderr is a terminal, kept otherwise.
    --filter-escape-chars-stdout, --no-filter-escape-chars-stdout,
    --filter-escape-chars-stderr, --no-filter-escape-chars-stderr
               the same for one stream only (binary data on stdout, messages
               on stderr filtered: what add-on commands use).
    --socket PATH
               the agent's local socket (default \(LocalCall.defaultSocketPath),
               or $\(LocalCall.socketPathVariable)).

    Exit status:
      the service's own status (128+N if it was killed by signal N)
      126  the call was refused by policy
      127  the target has no such service
      125  qrexec failed: the agent or host could not make the call, or the
           channel broke before the service's status arrived (a message on
           stderr says which)
      2    bad usage

    Examples:
      ody-call dom0 qubes.GetDate
          ask the admin domain for the date (if the policy allows it)
      echo hello | ody-call vault my.Echo
          send "hello" to my.Echo in the domain vault, print its answer
      ody-call @default qubes.Filecopy+report.pdf < report.pdf
          let the policy pick the target; the service sees the argument in
          $QREXEC_SERVICE_ARGUMENT
      ody-call @dispvm qubes.VMShell -- sh -c 'echo "uname -a"; cat >&2'
          run a local program talking to a shell in a fresh disposable
      ody-call work my.Service; echo "status $?"
          126 if the policy said no, 127 if work has no my.Service

    Services are executables or Unix sockets named SERVICE+ARG or SERVICE in
    the target's /usr/local/etc/qubes-rpc, /etc/qubes-rpc or /etc/odyssey/rpc.
    """

    static func say(_ s: String) {
        let line = Array(("ody-call: " + s + "\n").utf8)
        line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func out(_ s: String) {
        let b = Array(s.utf8)
        _ = try? FD.writeAll(1, b)
    }

    static func fail(_ s: String) -> Never {
        say(s)
        exit(failureStatus)
    }

    struct Options {
        var socketPath: String
        /// nil: filter what goes to a terminal.
        var filterStdout: Bool?
        var filterStderr: Bool?
        var target: String
        var service: String
        var local: [String]
    }

    static func parse(_ args: [String]) -> Options {
        var socketPath = getenv(LocalCall.socketPathVariable).map { String(cString: $0) } ?? LocalCall.defaultSocketPath
        var filterStdout: Bool?, filterStderr: Bool?
        var rest = args[...]
        while let a = rest.first, a.hasPrefix("-") {
            rest = rest.dropFirst()
            switch a {
            case "-h", "--help":
                out(help + "\n")
                exit(0)
            case "--socket":
                guard let p = rest.popFirst() else { say("--socket needs a path\n\(usage)"); exit(usageStatus) }
                socketPath = p
            case "--filter-escape-chars": (filterStdout, filterStderr) = (true, true)
            case "--no-filter-escape-chars": (filterStdout, filterStderr) = (false, false)
            case "--filter-escape-chars-stdout": filterStdout = true
            case "--no-filter-escape-chars-stdout": filterStdout = false
            case "--filter-escape-chars-stderr": filterStderr = true
            case "--no-filter-escape-chars-stderr": filterStderr = false
            case _ where a.hasPrefix("--socket="):
                socketPath = String(a.dropFirst("--socket=".count))
            case "--":
                break
            default:
                say("unknown option \(a)\n\(usage)")
                exit(usageStatus)
            }
            if a == "--" { break }
        }
        guard rest.count >= 2 else { say("TARGET and SERVICE are required\n\(usage)"); exit(usageStatus) }
        let target = rest.removeFirst(), service = rest.removeFirst()
        if rest.first == "--" { rest = rest.dropFirst() }
        return Options(socketPath: socketPath, filterStdout: filterStdout, filterStderr: filterStderr, target: target,
                       service: service, local: Array(rest))
    }

    static func main() -> Never {
        signal(SIGPIPE, SIG_IGN)
        // A closed 0/1/2 would be reused by the socket: keep them taken.
        for f: Int32 in 0...2 where fcntl(f, F_GETFD) < 0 { _ = open("/dev/null", O_RDWR) }
        let o = parse(Array(CommandLine.arguments.dropFirst()))

        switch LocalCall.open(socketPath: o.socketPath, target: o.target, service: o.service) {
        case .refused:
            say("request refused")
            exit(refusedStatus)
        case .failed(let why):
            fail(why)
        case .channel(let channel):
            exit(o.local.isEmpty ? callService(channel, o.filterStdout, o.filterStderr)
                                 : callWithLocalProgram(channel, o.local, o.filterStderr))
        }
    }

    /// ody-call's own stdio on the channel; the service's status.
    static func callService(_ channel: Int32, _ filterStdout: Bool?, _ filterStderr: Bool?) -> Int32 {
        let out = EscapeFilter.start(for: 1, filterStdout ?? (isatty(1) == 1))
        let err = EscapeFilter.start(for: 2, filterStderr ?? (isatty(2) == 1))
        let r: Result<Int32, QrexecError>
        do { r = .success(try DataClient.run(channel: channel, stdin: 0, stdout: out.fd, stderr: err.fd)) } catch { r = .failure(error) }
        out.finish(); err.finish()
        switch r {
        case .success(let status): return status
        case .failure(let e): fail(describe(e))
        }
    }

    static func describe(_ e: QrexecError) -> String {
        e == .closed ? "the data channel closed before the service's exit status arrived" : "data channel: \(e)"
    }

    /// LOCAL-PROGRAM's stdout -> the service's stdin, the service's stdout ->
    /// LOCAL-PROGRAM's stdin; the local program's status.
    static func callWithLocalProgram(_ channel: Int32, _ argv: [String], _ filterStderr: Bool?) -> Int32 {
        var toProg: [Int32] = [-1, -1], fromProg: [Int32] = [-1, -1]
        guard pipe(&toProg) == 0, pipe(&fromProg) == 0 else { fail("pipe: \(String(cString: strerror(errno)))") }
        for f in toProg + fromProg { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(channel, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toProg[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromProg[1], 1)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cargs.append(nil)
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, cargs, environ)
        posix_spawn_file_actions_destroy(&actions)
        for p in cargs { free(p) }
        close(toProg[0]); close(fromProg[1])
        guard rc == 0 else {
            close(toProg[1]); close(fromProg[0]); close(channel)
            fail("cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        var qrexecError: QrexecError?
        let err = EscapeFilter.start(for: 2, filterStderr ?? (isatty(2) == 1))
        do { _ = try DataClient.run(channel: channel, stdin: fromProg[0], stdout: toProg[1], stderr: err.fd) } catch {
            qrexecError = error
        }
        err.finish()
        close(channel)
        close(toProg[1]); close(fromProg[0])   // the program sees EOF on its stdin
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if let e = qrexecError { fail(describe(e)) }
        return DataStream.exitStatus(waitStatus: status)
    }
}
