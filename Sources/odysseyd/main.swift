// odysseyd: the Odyssey host daemon.
import ArgumentParser
import FoundationEssentials
import Host
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct Odysseyd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "odysseyd",
        abstract: "The Odyssey host daemon: loads backend plugins and serves the admin socket.",
        discussion: """
            Reads the config file (TOML), loads every plugin manifest found in its plugin_dirs,
            and listens on admin_socket. Without --foreground it detaches, logs to
            <state_dir>/odysseyd.log, and returns once the daemon is ready.

            Signals: SIGHUP reloads the config and rescans plugin directories (a bad new
            config is reported and the running one kept); SIGTERM or SIGINT stop cleanly.

            Examples:
              odysseyd --config config/odyssey.toml --foreground
              ody --socket /run/odyssey/admin.sock plugins
            """)

    @Option(name: .long, help: ArgumentHelp("Config file.", valueName: "FILE"))
    var config: String = ProcessInfo.processInfo.environment["ODYSSEY_CONFIG"] ?? "/etc/odyssey/odyssey.toml"

    @Flag(name: .long, help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Option(name: .long, help: ArgumentHelp("Write READY to this file descriptor once serving (for supervisors).", valueName: "FD"))
    var readyFd: Int32?

    @Option(name: .long, help: ArgumentHelp("Override log_level (trace, debug, info, notice, warning, error).", valueName: "LEVEL"))
    var logLevel: String?

    func validate() throws {
        if let l = logLevel, Logger.Level(rawValue: l) == nil { throw ValidationError("--log-level: '\(l)' is not a log level") }
    }

    func run() throws {
        Daemon.blockHandledSignals()   // before any thread exists, so all inherit it
        let cfg: OdysseyConfig
        do { cfg = try OdysseyConfig.load(path: config) } catch {
            Sys.printError("odysseyd: \(error)")
            throw ExitCode(2)
        }
        if !foreground {
            try? FileManager.default.createDirectory(atPath: cfg.stateDir, withIntermediateDirectories: true)
            var args = ["--config", config]
            if let l = logLevel { args += ["--log-level", l] }
            do {
                let pid = try Detach.spawnAndWaitReady(executable: Sys.executablePath() ?? CommandLine.arguments[0], arguments: args,
                                                       logPath: cfg.stateDir + "/odysseyd.log")
                print("odysseyd running (pid \(pid)), log \(cfg.stateDir)/odysseyd.log, socket \(cfg.adminSocket)")
                return
            } catch {
                Sys.printError("odysseyd: \(error)")
                throw ExitCode(1)
            }
        }
        let level = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? cfg.logLevel
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "odysseyd")
        do {
            let daemon = try Daemon(configPath: config, logger: logger)
            try daemon.start()
            if let fd = readyFd { Detach.notifyReady(fd: fd) }
            daemon.serveSignals()
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
    }
}

// Before anything else, even argument parsing: see Daemon.ignoreSIGPIPE.
Daemon.ignoreSIGPIPE()
Odysseyd.main()
