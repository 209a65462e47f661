// `ody run`: a command in a domain, like qvm-run. Talks to the daemon's
// qrexec socket (<state_dir>/qrexec.sock, next to the admin socket); the
// daemon passes the session's data channel over, so stdio flows between this
// process and the domain's agent directly.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host
import Qrexec

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", 
        abstract: "Run a command in a domain (starting it if needed).",
        discussion: """
            With --pass-io (-p) stdin, stdout and stderr are connected and ody exits with the
            command's status; without it the command is started detached, as qvm-run does.
            One argument after -- is a shell command line run by /bin/sh -c in the domain;
            several arguments are passed as they are (each one quoted for the shell).

            --dispvm runs the command in a fresh disposable from default_dispvm (--dispvm=T:
            from template T), destroyed when the command ends; it needs --pass-io. The
            targets @dispvm and @dispvm:T mean the same.

            Examples:
              ody run work -p -- uname -a
              ody run --dispvm -p -- sh -c 'echo I am $(hostname)'
              ody run --dispvm=web-dvm -p -- wget -qO- https://example.org
              ody run work -p -- 'ls /home/user | wc -l'
              echo data | ody run vault -p --user root -- cat
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The domain (or @dispvm, @dispvm:TEMPLATE).") var domain: String
    @Option(name: [.short, .long], help: "User to run as in the domain.") var user: String = "user"
    @Flag(name: [.short, .customLong("pass-io")], help: "Connect stdio and return the command's exit status.") var passIO = false
    @Argument(parsing: .postTerminator, help: "The command.") var command: [String] = []

    func validate() throws {
        if domain.hasPrefix("@dispvm") && !passIO { throw ValidationError("a disposable needs --pass-io (-p): it is destroyed when the command ends") }
        guard !command.isEmpty else { throw ValidationError("give the command after --, e.g. ody run \(domain) -p -- uname -a") }
    }

    /// One argument is a command line; several are quoted so sh sees them as they are.
    static func commandLine(_ argv: [String]) -> String {
        if argv.count == 1 { return argv[0] }
        return argv.map { "'" + $0.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }.joined(separator: " ")
    }

    func run() throws {
        let status = client.agentSocket.map { Self.executeInDomain(agentSocket: $0, domain: domain, command: command, passIO: passIO) }
            ?? Self.execute(socketPath: client.socketPath, domain: domain, user: user, command: command, passIO: passIO)
        if status != 0 { throw ExitCode(status) }
    }

    /// Shared with RunFastPath: returns the exit status to leave with.
    static func execute(socketPath: String, domain: String, user: String, command: [String], passIO: Bool) -> Int32 {
        let socket = Path.join(Path.dirname(socketPath), "qrexec.sock")
        do {
            return try RunClient.run(socket: socket, domain: domain, user: user, command: commandLine(command), passIO: passIO)
        } catch {
            printError("ody: \(error)")
            return 125   // qrexec failure, as qrexec-client reports it
        }
    }

    /// Inside a domain: a qrexec call through the agent, under the host's
    /// policy (Qubes' qvm-run in a management VM). Several words are
    /// `qubes.VMExec+<argv>`; one shell command line is `qubes.VMShell` with
    /// the line on stdin. The policy decides the user (--user is not sent).
    /// Without --pass-io the command's output is discarded and its status not
    /// reported. Exit status as ody-call's: 126 refused, 125 qrexec failure.
    static func executeInDomain(agentSocket: String, domain: String, command: [String], passIO: Bool) -> Int32 {
        let service = command.count == 1 ? "qubes.VMShell" : "qubes.VMExec+" + VMExecArgument.encode(command)
        let channel: Int32
        switch LocalCall.open(socketPath: agentSocket, target: domain, service: service) {
        case .refused: printError("ody: request refused"); return 126
        case .failed(let why): printError("ody: \(why)"); return 125
        case .channel(let c): channel = c
        }
        defer { close(channel) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if null >= 0 { close(null) } }
        var stdin: Int32? = passIO ? 0 : nil
        var shellIn: Int32 = -1
        if command.count == 1 {
            // The line first, then (with --pass-io) our stdin, as qvm-run sends it.
            var p: [Int32] = [-1, -1]
            guard pipe(&p) == 0 else { printError("ody: pipe: \(String(cString: strerror(errno)))"); return 125 }
            for f in p { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
            let line = Array((command[0] + "; exit\n").utf8)
            let (r, w) = (p[0], p[1])
            Threads.detach {
                defer { close(w) }
                guard (try? Sys.writeAll(w, line, what: "command")) != nil, passIO else { return }
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(0, &buf, buf.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 || (try? Sys.writeAll(w, Array(buf[0..<n]), what: "stdin")) == nil { return }
                }
            }
            shellIn = r
            stdin = r
        }
        defer { if shellIn >= 0 { close(shellIn) } }
        do {
            let status = try DataClient.run(channel: channel, stdin: stdin, stdout: passIO ? 1 : null, stderr: passIO ? 2 : null)
            return passIO ? status : 0
        } catch {
            printError("ody: data channel: \(error)")
            return 125
        }
    }
}
