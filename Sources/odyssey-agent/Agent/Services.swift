// Services in the domain: MSG_EXEC_CMDLINE "user:QUBESRPC SERVICE+ARG SOURCE"
// (optionally followed by "name TARGET" / "keyword TARGET", the requested
// target, when the host passes it, then "uuid:UUID", the caller's uuid).
// Looked up as Qubes does:
//
//   for NAME in SERVICE+ARG, SERVICE:        (SERVICE+ARG only if it has a '+'
//     for DIR in the service directories:     and is at most 255 bytes)
//       lstat(DIR/NAME): ENOENT -> next; any other error -> fail (125);
//       found -> stop searching (symlinks are followed from here on)
//
//   executable regular file -> exec'd directly (no shell), argv = [path] or,
//       with a non-empty argument, [path, argument] as Qubes R4.1+ does (so
//       Qubes scripts reading "$1" run unmodified; the argument is also in
//       QREXEC_SERVICE_ARGUMENT). It is already restricted to
//       [A-Za-z0-9._+-], but may start with '-': a service that hands it to
//       another program must guard against option injection, as in Qubes.
//       As the user of the command line, stdio on the data channel. A script
//       without "#!" (exec says ENOEXEC) runs as `/bin/sh PATH ARG`, as a
//       shell would run it; names still never pass through a shell.
//   Unix socket -> connected (as the agent), `"SERVICE+ARG SOURCE\0"` written
//       first, then the data channel is spliced to it; exit status 0 when the
//       service closes its end.
//   anything else found -> 125; nothing found -> 127. Both with a line on
//       the caller's stderr.
//
// Environment: PATH, HOME, USER, LOGNAME, SHELL as for commands, plus
// QREXEC_REMOTE_DOMAIN, QREXEC_SERVICE_FULL_NAME, QREXEC_REMOTE_DOMAIN_UUID
// (when the host passed it), QREXEC_SERVICE_ARGUMENT
// (only with a non-empty argument), QREXEC_REQUESTED_TARGET_TYPE with
// QREXEC_REQUESTED_TARGET (type "name") or QREXEC_REQUESTED_TARGET_KEYWORD
// (type "keyword") when the host passed them, and QREXEC_AGENT_PID.
#if canImport(Glibc)
import Glibc
#endif
import Qrexec
import VchanSocketCore

enum Services {
    /// The service directories, searched in this order for each name:
    /// /usr/local first (the domain's own additions override packaged files,
    /// as in Qubes), then Qubes' packaged directory, then Odyssey's own
    /// services (qubes.VMShell and friends that Odyssey ships), then the
    /// add-ons' domain-side services (links to odyssey-addon-run), so an
    /// installed Qubes package or a local file can replace Odyssey's version.
    /// `ODYSSEY_RPC_DIRS` (colon-separated) replaces the list (tests).
    static let defaultDirectories = ["/usr/local/etc/qubes-rpc", "/etc/qubes-rpc", "/etc/odyssey/rpc", "/.odyssey/addons/rpc"]
    static let directoriesVariable = "ODYSSEY_RPC_DIRS"

    /// Exit status when no service file exists (Qubes: 127).
    static let notFound: Int32 = 127

    enum Found: Equatable {
        case executable(String)
        case socket(String)
        case none
        case unusable(String)
    }

    static func directories(fromEnvironment value: String?) -> [String] {
        guard let value, !value.isEmpty else { return defaultDirectories }
        return value.split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
    }

    static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

    static func lookup(_ cmd: ServiceCommand, in dirs: [String]) -> Found {
        for name in cmd.lookupNames {
            for dir in dirs {
                let path = dir + "/" + name
                var st = stat()
                if lstat(path, &st) != 0 {
                    let e = errno
                    if e == ENOENT { continue }
                    return .unusable("\(path): \(errnoText(e))")
                }
                if stat(path, &st) != 0 { return .unusable("\(path): \(errnoText(errno))") }
                let type = st.st_mode & S_IFMT
                if type == S_IFSOCK { return .socket(path) }
                if type == S_IFREG && st.st_mode & 0o111 != 0 { return .executable(path) }
                return .unusable("\(path) is neither an executable file nor a socket")   // logged only
            }
        }
        return .none
    }

    static func run(_ untrusted_command: [UInt8], user: String, justExec: Bool, stream: QrexecStream, fd: Int32,
                    version: UInt32, _ cfg: AgentConfig) {
        let cmd: ServiceCommand
        do { cmd = try ServiceCommand.parse(untrusted_command) } catch {
            return Session.fail(stream, Session.qrexecFailure, "service call refused: \(error)")
        }
        switch lookup(cmd, in: cfg.rpcDirs) {
        // The caller learns what happened, not this domain's paths (those go to the log).
        case .none where cmd.service == "qubes.VMExec":
            // Built in, as every Qubes VM has it; a qubes.VMExec file found
            // in the service directories takes precedence.
            runVMExec(cmd, user: user, justExec: justExec, stream: stream, fd: fd, version: version)
        case .none:
            Log.say("service \(cmd.fullName) from \(cmd.source): looked for \(cmd.lookupNames.joined(separator: ", ")) in \(cfg.rpcDirs.joined(separator: ":"))")
            Session.fail(stream, notFound, "service \(cmd.fullName) not found")
        case .unusable(let why):
            Log.say("service \(cmd.fullName) from \(cmd.source): \(why)")
            Session.fail(stream, Session.qrexecFailure, "service \(cmd.fullName) cannot be run")
        case .socket(let path):
            runSocket(cmd, path: path, stream: stream, fd: fd, version: version)
        case .executable(let path):
            guard let entry = Users.lookup(user) else {
                return Session.fail(stream, Session.qrexecFailure, "no user \"\(user)\" in /etc/passwd")
            }
            let setIDs = geteuid() == 0
            if !setIDs && entry.uid != geteuid() {
                return Session.fail(stream, Session.qrexecFailure, "cannot run as \(user): the agent does not run as root")
            }
            let env = Session.baseEnvironment(entry) + cmd.environment(agentPID: getpid()).map { Array($0.utf8) }
            let p = Array(path.utf8)
            let arg: [[UInt8]] = (cmd.argument ?? "").isEmpty ? [] : [Array(cmd.argument!.utf8)]
            Session.runChild([(path, [p] + arg), ("/bin/sh", [Array("/bin/sh".utf8), p] + arg)], env: env, entry, setIDs,
                             justExec: justExec, notRunnable: Session.qrexecFailure, stream: stream, fd: fd, version: version)
        }
    }

    /// qubes.VMExec+ARG: the argv encoded in the argument, exec'd without a
    /// shell (the program found in the PATH commands get).
    static func runVMExec(_ cmd: ServiceCommand, user: String, justExec: Bool, stream: QrexecStream, fd: Int32, version: UInt32) {
        let argv: [[UInt8]]
        do { argv = try VMExecArgument.decode(cmd.argument ?? "") } catch {
            return Session.fail(stream, Session.qrexecFailure, error.description)
        }
        guard let entry = Users.lookup(user) else {
            return Session.fail(stream, Session.qrexecFailure, "no user \"\(user)\" in /etc/passwd")
        }
        let name = String(decoding: argv[0], as: UTF8.self)
        let dirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        let path = name.contains("/") ? name : dirs.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
        guard let path else { return Session.fail(stream, notFound, "qubes.VMExec: \(name): command not found") }
        let env = Session.baseEnvironment(entry) + cmd.environment(agentPID: getpid()).map { Array($0.utf8) }
        Session.runChild([(path, argv)], env: env, entry, geteuid() == 0, justExec: justExec,
                         notRunnable: notFound, stream: stream, fd: fd, version: version)
    }

    /// A socket service: connect, the descriptor, then splice both ways.
    static func runSocket(_ cmd: ServiceCommand, path: String, stream: QrexecStream, fd: Int32, version: UInt32) {
        let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard sock >= 0 else { return Session.fail(stream, Session.qrexecFailure, "socket: \(errnoText(errno))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(sock)
            return Session.fail(stream, Session.qrexecFailure, "service socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        } while rc != 0 && errno == EINTR
        guard rc == 0 else {
            let e = errno
            close(sock)
            Log.say("service \(cmd.fullName): connecting to \(path): \(errnoText(e))")
            return Session.fail(stream, Session.qrexecFailure, "service \(cmd.fullName) cannot be run (its socket does not answer)")
        }
        do { try FD.writeAll(sock, cmd.socketDescriptor) } catch {
            close(sock)
            Log.say("service \(cmd.fullName): writing to \(path): \(error)")
            return Session.fail(stream, Session.qrexecFailure, "service \(cmd.fullName) cannot be run (its socket closed)")
        }
        let writeSide = fcntl(sock, F_DUPFD_CLOEXEC, 3)
        guard writeSide >= 0 else {
            close(sock)
            return Session.fail(stream, Session.qrexecFailure, "dup: \(errnoText(errno))")
        }
        _ = fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK)   // shared by both descriptors
        var io = Session.PumpState(stdinW: writeSide, stdoutR: sock, stderrR: -1, noteR: -1, pid: 0, exitStatus: 0)
        Session.pump(fd: fd, version: version, &io)
        for f in [io.stdinW, io.stdoutR] where f >= 0 { close(f) }
    }
}
