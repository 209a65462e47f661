// Startup, signal handling and shutdown of the agent (see main.swift).
#if canImport(Glibc)
import Glibc
#endif
import Qrexec
import VchanSocketCore

enum Supervisor {
    static func env(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static let handledSignals: [Int32] = [SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]

    static func main() -> Never {
        Log.mark("agent started")
        var domain = env("ODYSSEY_DOMAIN") ?? ""
        var noInit = env("ODYSSEY_AGENT_NO_INIT") == "1"
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            switch a {
            case "--domain": domain = args.popFirst() ?? ""
            case "--no-init": noInit = true
            default:
                Log.say("unknown argument \(a); usage: odyssey-agent [--domain NAME] [--no-init]")
                exit(2)
            }
        }
        if domain.isEmpty { domain = hostname() }
        guard ChannelLayout.isValidDomainName(domain) else {
            Log.say("invalid domain name \"\(domain)\" (set --domain or ODYSSEY_DOMAIN)")
            exit(2)
        }
        let socketDir = env("VCHAN_SOCKET_DIR") ?? ChannelLayout.defaultDirectory
        let dialer: ChannelDialer
        switch ChannelDialer.from(environment: env("ODYSSEY_VCHAN"), socketDir: socketDir) {
        case .success(let d): dialer = d
        case .failure(let e):
            Log.say("\(e)")
            exit(2)
        }
        let cfg = AgentConfig(domain: domain, socketDir: socketDir, initMode: getpid() == 1 && !noInit, dialer: dialer,
                              rpcDirs: Services.directories(fromEnvironment: env(Services.directoriesVariable)),
                              localSocket: env(LocalCall.socketPathVariable) ?? LocalCall.defaultSocketPath)

        // Signals are handled by one thread with sigwait; every other thread
        // has them blocked, and children get a clean mask from the spawn shim.
        signal(SIGPIPE, SIG_IGN)
        // A real (empty) handler, not SIG_DFL: the kernel drops SIG_DFL
        // signals sent to a pid namespace's init, even from the host.
        for s in handledSignals {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { _ in }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = Int32(SA_RESTART)
            sigaction(s, &sa, nil)
        }
        var handled = sigset_t()
        sigemptyset(&handled)
        for s in handledSignals { sigaddset(&handled, s) }
        pthread_sigmask(SIG_BLOCK, &handled, nil)

        if cfg.initMode { Home.ensure(for: env("ODYSSEY_DEFAULT_USER") ?? "user") }
        Log.mark("home ready")
        guard startThread({ signalLoop(cfg) }) else { Log.say("cannot start the signal thread"); exit(1) }
        LocalCalls.shared.start(path: cfg.localSocket)
        Control.run(cfg)
    }

    static func signalLoop(_ cfg: AgentConfig) -> Void {
        var set = sigset_t()
        sigemptyset(&set)
        for s in handledSignals { sigaddset(&set, s) }
        while true {
            var sig: Int32 = 0
            guard sigwait(&set, &sig) == 0 else { continue }
            switch sig {
            case SIGCHLD:
                Reaper.shared.reapAll()
            case SIGTERM, SIGINT:
                shutdown(cfg, signal: sig)
            default:
                // Forwarded to the commands; the agent itself carries on.
                for g in Reaper.shared.runningGroups { kill(-g, sig) }
            }
        }
    }

    /// Stops every command and exits (the domain halts when its PID 1 exits).
    static func shutdown(_ cfg: AgentConfig, signal sig: Int32) -> Never {
        Log.say("signal \(sig): stopping commands and exiting")
        if cfg.initMode {
            kill(-1, sig)   // as PID 1 of a pid namespace: everyone but us
            kill(-1, SIGCONT)
        } else {
            for g in Reaper.shared.runningGroups { kill(-g, sig); kill(-g, SIGCONT) }
        }
        // Grace period: reap until no child is left, at most 2 s, then SIGKILL.
        let deadline = monotonicNs() + 2_000_000_000
        while monotonicNs() < deadline {
            if !Reaper.shared.reapAll() { break }
            if !cfg.initMode && Reaper.shared.runningGroups.isEmpty { break }
            Control.sleepMs(5)
        }
        if cfg.initMode { kill(-1, SIGKILL) } else { for g in Reaper.shared.runningGroups { kill(-g, SIGKILL) } }
        Reaper.shared.reapAll()
        exit(0)
    }
}
