// Qubes' dom0 `qrexec-client`, for Qubes' own tools: qubesadmin runs
// `/usr/lib/qubes/qrexec-client -d DOMAIN [-t] [-T] [-l LOCAL] [-e] [-p DATA]
// [-w SECS] USER:COMMAND` for qvm-run and every `vm.run_service`. `ody`
// answers to that name (make install-qubes-compat links it there), parses
// Qubes' options and runs the command through odysseyd's run socket, as
// `ody run` does: the daemon starts the domain if needed and hands the data
// channel over. Exit statuses are Qubes': the command's own, 125 when qrexec
// itself failed, 126 refused, 127 no such service.
import FoundationEssentials
import Host
import Qrexec
#if canImport(Glibc)
import Glibc
#endif

enum QrexecClientCompat {
    static let problem: Int32 = 125

    struct Options {
        var domain: String?
        var localCommand: String?
        var justExec = false
        var exitWithCode = true
        var replaceStdout = false
        var replaceStderr = false
        var prefix: [UInt8]?
        var kill = false
        var remote: String?
    }

    static let usage = """
        usage: qrexec-client [options] -d DOMAIN [-l LOCAL_COMMAND | -e] USER:COMMAND
        Qubes' dom0 qrexec-client, answered by Odyssey's `ody` through odysseyd's run socket
        ($ODYSSEY_SOCKET's directory, else admin_socket's from the config file).
          -d DOMAIN          the target domain (started if halted); @dispvm[:TEMPLATE] too
          USER:COMMAND       USER as in the domain, or DEFAULT for its default_user; COMMAND a
                             shell command line, or `QUBESRPC SERVICE+ARG SOURCE` for a service
          -l LOCAL_COMMAND   connect the command's stdin/stdout to LOCAL_COMMAND (run by /bin/sh -c)
          -e                 exit once the command started (its output is discarded)
          -E, --no-exit-code always exit 0 once the command ended
          -t, -T             replace bytes other than printable ASCII, tab, CR, LF, BS and BEL by
                             '_' in the command's stdout (-t) or stderr (-T)
          -p DATA, --prefix-data=DATA   send DATA before our stdin
          -k                 kill the domain when the command ended
          -w SECS, -W, --socket-dir=DIR accepted for compatibility (odysseyd's qrexec_timeout applies)
          -c ...             not supported: odysseyd connects domain-to-domain calls itself
        Exit status: the command's, 125 when qrexec failed, 126 refused, 127 no such service.
        """

    /// Runs as qrexec-client (and exits) when invoked under that name.
    static func runIfInvoked(_ argv: [String]) {
        guard let first = argv.first, first.split(separator: "/").last == "qrexec-client" else { return }
        exit(main(Array(argv.dropFirst())))
    }

    static func fail(_ status: Int32, _ message: String) -> Int32 {
        printError("qrexec-client: " + message)
        return status
    }

    /// GNU-getopt-like parsing of Qubes' option string "hd:l:eEc:p:tTw:Wk"
    /// and its long options; nil after printing help or an error (`status`).
    static func parse(_ args: [String], status: inout Int32) -> Options? {
        var o = Options()
        var i = 0
        var operands: [String] = []
        func value(_ flag: String, attached: Substring) -> String? {
            if !attached.isEmpty { return String(attached) }
            i += 1
            return i < args.count ? args[i] : nil
        }
        while i < args.count {
            let a = args[i]
            if a == "--" { operands += args[(i + 1)...]; break }
            if a.hasPrefix("--") {
                let (name, inline) = a.firstIndex(of: "=").map { (String(a[..<$0]), String(a[a.index(after: $0)...])) } ?? (a, nil)
                switch name {
                case "--help": print(usage); status = 0; return nil
                case "--no-exit-code": o.exitWithCode = false
                case "--prefix-data", "--socket-dir":
                    let v = inline ?? { i += 1; return i < args.count ? args[i] : nil }()
                    guard let v else { status = 1; _ = fail(1, "\(name) needs a value"); return nil }
                    if name == "--prefix-data" {
                        if o.prefix != nil { status = 2; _ = fail(2, "--prefix-data given twice"); return nil }
                        o.prefix = Array(v.utf8)
                    }
                case "--use-stdin-socket": status = 2; _ = fail(2, "--use-stdin-socket is not supported"); return nil
                default: status = 1; _ = fail(1, "unknown option \(name)\n" + usage); return nil
                }
                i += 1
                continue
            }
            guard a.hasPrefix("-"), a.count > 1 else { operands.append(a); i += 1; continue }
            var rest = a.dropFirst()
            while let c = rest.first {
                rest = rest.dropFirst()
                switch c {
                case "h": print(usage); status = 0; return nil
                case "e": o.justExec = true
                case "E": o.exitWithCode = false
                case "t": o.replaceStdout = true
                case "T": o.replaceStderr = true
                case "k": o.kill = true
                case "W": break
                case "d", "l", "p", "w", "c":
                    guard let v = value("-\(c)", attached: rest) else { status = 1; _ = fail(1, "-\(c) needs a value\n" + usage); return nil }
                    rest = ""
                    switch c {
                    case "d": o.domain = v
                    case "l": o.localCommand = v
                    case "p":
                        if o.prefix != nil { status = 2; _ = fail(2, "-p given twice"); return nil }
                        o.prefix = Array(v.utf8)
                    case "w":
                        guard let n = Int(v), n >= 0 else { status = 1; _ = fail(1, "invalid connection timeout '\(v)'"); return nil }
                    default:
                        status = problem
                        _ = fail(problem, "-c (connect to an existing process) is not supported: odysseyd connects calls between domains itself")
                        return nil
                    }
                default: status = 1; _ = fail(1, "unknown option -\(c)\n" + usage); return nil
                }
            }
            i += 1
        }
        guard o.domain != nil, let remote = operands.first else { status = 1; _ = fail(1, "give -d DOMAIN and USER:COMMAND\n" + usage); return nil }
        if o.justExec && o.localCommand != nil { status = 1; _ = fail(1, "only one of -e, -l, -c can be specified"); return nil }
        o.remote = remote
        return o
    }

    static func main(_ args: [String]) -> Int32 {
        var status: Int32 = 0
        guard let o = parse(args, status: &status), let domain = o.domain, let remote = o.remote else { return status }
        guard let colon = remote.firstIndex(of: ":"), colon != remote.startIndex else {
            return fail(problem, "the command must be USER:COMMAND (got '\(remote)')")
        }
        let user = String(remote[..<colon]), command = String(remote[remote.index(after: colon)...])
        guard !command.isEmpty else { return fail(problem, "empty command after '\(user):'") }
        if domain == "dom0" { return fail(problem, "dom0 -> dom0 calls are made by the caller itself (qubesadmin does), not through odysseyd") }
        var client = ClientOptions()   // no options of ody's here: the environment and config file say
        client.socket = nil
        client.config = nil
        let socket = Path.join(Path.dirname(client.socketPath), "qrexec.sock")
        signal(SIGPIPE, SIG_IGN)

        var result: Int32
        do {
            if o.justExec {
                result = try RunClient.run(socket: socket, domain: domain, user: user, command: command, passIO: false)
            } else {
                result = try CompatSession.run(socket: socket, domain: domain, user: user, command: command, options: o)
            }
        } catch {
            return fail(problem, "\(error)")
        }
        if o.kill {
            do { _ = try AdminClient(socketPath: client.socketPath).call(AdminRequest(method: "admin.vm.Kill", argument: "", dest: domain, payload: [])) } catch {
                printError("qrexec-client: killing \(domain): \(error)")
            }
        }
        if !o.exitWithCode { result = 0 }
        return result
    }
}
