// `ody run` is the hot path (a command in a domain, often in scripts and
// loops): its plain forms are parsed here by hand, skipping ArgumentParser's
// reflection over every command (~1.5 ms of a ~3 ms call). Anything this
// parser does not recognise exactly (--help, a typo, an unknown flag) falls
// through to ArgumentParser, which then gives the usual help and errors.
import FoundationEssentials
import Host
#if canImport(Glibc)
import Glibc
#endif

enum RunFastPath {
    struct Parsed {
        var domain: String
        var user = "user"
        var passIO = false
        var socket: String?
        var config: String?
        var command: [String]
    }

    /// `ody run [options] DOMAIN [options] -- COMMAND...` or nil to fall back.
    static func parse(_ argv: [String]) -> Parsed? {
        guard argv.count >= 2, argv[1] == "run", let dashes = argv.firstIndex(of: "--"), dashes + 1 < argv.count else { return nil }
        var domain: String?, user = "user", passIO = false, socket: String?, config: String?
        var i = 2
        func value(_ flag: String) -> String? {
            let a = argv[i]
            if a.hasPrefix(flag + "=") { return String(a.dropFirst(flag.count + 1)) }
            guard i + 1 < dashes else { return nil }
            i += 1
            return argv[i]
        }
        while i < dashes {
            let a = argv[i]
            switch a {
            case "-p", "--pass-io": passIO = true
            case "-u", "--user": guard let v = value("--user"), !v.hasPrefix("-") else { return nil }; user = v
            case "--socket": guard let v = value("--socket") else { return nil }; socket = v
            case "--config": guard let v = value("--config") else { return nil }; config = v
            default:
                if a.hasPrefix("--user=") { user = String(a.dropFirst(7)); if user.isEmpty { return nil } }
                else if a.hasPrefix("--socket=") { socket = String(a.dropFirst(9)) }
                else if a.hasPrefix("--config=") { config = String(a.dropFirst(9)) }
                else if a.hasPrefix("-") || domain != nil { return nil }
                else { domain = a }
            }
            i += 1
        }
        guard let domain, passIO || !domain.hasPrefix("@dispvm") else { return nil }   // ArgumentParser explains
        return Parsed(domain: domain, user: user, passIO: passIO, socket: socket, config: config,
                      command: Array(argv[(dashes + 1)...]))
    }

    /// `--dispvm` / `--dispvm=T` become the target `@dispvm` / `@dispvm:T`
    /// (ArgumentParser has no options with an optional value).
    static func normalizeDispvm(_ argv: [String]) -> [String] {
        guard argv.count >= 2, argv[1] == "run" else { return argv }
        let end = argv.firstIndex(of: "--") ?? argv.count
        return argv.enumerated().map { i, a in
            guard i > 1, i < end else { return a }
            if a == "--dispvm" { return "@dispvm" }
            if a.hasPrefix("--dispvm=") { return "@dispvm:" + a.dropFirst("--dispvm=".count) }
            return a
        }
    }

    /// Runs the command if argv is a plain `ody run`; returns only if not.
    static func runIfPlain(_ argv: [String]) {
        guard let p = parse(argv) else { return }
        var client = ClientOptions()
        client.socket = p.socket
        client.config = p.config
        if let agent = client.agentSocket {
            exit(Run.executeInDomain(agentSocket: agent, domain: p.domain, command: p.command, passIO: p.passIO))
        }
        exit(Run.execute(socketPath: client.socketPath, domain: p.domain, user: p.user, command: p.command, passIO: p.passIO))
    }
}
