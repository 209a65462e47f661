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
        let status = Self.execute(socketPath: client.socketPath, domain: domain, user: user, command: command, passIO: passIO)
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
}
