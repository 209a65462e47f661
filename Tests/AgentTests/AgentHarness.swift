// Runs the real odyssey-agent as an ordinary child process (no namespaces:
// ODYSSEY_AGENT_NO_INIT=1) against the host's AgentLink, with the real
// vchan-socket plugin loaded through the host's PluginLoader from a temp
// plugin directory, exactly as odysseyd would.
import Foundation
import Host
import Logging
import XCTest

enum AgentBuild {
    /// The repository (or dev package) root: Tests/AgentTests/AgentHarness.swift is three levels down.
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `ODYSSEY_BUILD_DIR`, else `<repo>/.build/debug`.
    static var dir: String { ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? repoRoot + "/.build/debug" }
    static var agent: String { dir + "/odyssey-agent" }
    static var plugin: String { dir + "/libvchan-socket.so" }
    static var manifest: String { repoRoot + "/Plugins/vchan-socket/vchan-socket.json" }
}

/// A temp dir, the vchan plugin loaded through Backends, and agents started on demand.
final class AgentFixture {
    let dir: String
    let socketDir: String
    let backends: Backends
    let vchan: VchanBackend
    let logger: Logger
    private var agents: [Process] = []
    private var links: [AgentLink] = []

    init(file: StaticString = #filePath, line: UInt = #line) throws {
        let fm = FileManager.default
        for p in [AgentBuild.agent, AgentBuild.plugin] where !fm.fileExists(atPath: p) {
            XCTFail("\(p) is missing: build first (`swift build`)", file: file, line: line)
            throw XCTSkip("not built")
        }
        // Short: socket paths must fit in sun_path (108 bytes).
        dir = "/tmp/oat-" + String(UUID().uuidString.prefix(8))
        socketDir = dir + "/vchan"
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        try fm.copyItem(atPath: AgentBuild.plugin, toPath: plugins + "/libvchan-socket.so")
        try fm.copyItem(atPath: AgentBuild.manifest, toPath: plugins + "/vchan-socket.json")
        let text = """
        plugin_dirs = ["\(plugins)"]
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/admin.sock"

        [vchan]
        default = "socket"

        [vchan.socket]
        socket_dir = "\(socketDir)"
        """
        let path = dir + "/odyssey.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try OdysseyConfig.parse(text, path: path)
        var logger = Logger(label: "agent-tests")
        logger.logLevel = .critical
        self.logger = logger
        backends = Backends.load(config: config, logger: logger, events: EventBus())
        vchan = try backends.vchan()
    }

    /// A link for `domain` (listening before the agent starts, as odysseyd does).
    func link(_ domain: String, onClose: (@Sendable (AgentLink, String) -> Void)? = nil) throws -> AgentLink {
        let l = try AgentLink(domain: domain, vchan: vchan, logger: logger, onClose: onClose)
        links.append(l)
        return l
    }

    /// Starts the real agent for `domain`, seeing only its own channel directory.
    @discardableResult
    func startAgent(_ domain: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: AgentBuild.agent)
        p.arguments = []
        var env = ProcessInfo.processInfo.environment
        env["VCHAN_SOCKET_DIR"] = socketDir + "/" + domain
        env["ODYSSEY_DOMAIN"] = domain
        env["ODYSSEY_AGENT_NO_INIT"] = "1"
        p.environment = env
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        agents.append(p)
        return p
    }

    /// A ready link to a running agent.
    func readyDomain(_ domain: String) throws -> AgentLink {
        let l = try link(domain)
        try startAgent(domain)
        try l.waitReady(timeoutMs: 20_000)
        return l
    }

    deinit {
        for a in agents where a.isRunning { a.terminate() }
        for a in agents { a.waitUntilExit() }
        for l in links { l.close() }
        backends.closeAll()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The name commands run as: root when the tests do, else the current user.
    static var user: String {
        if geteuid() == 0 { return "root" }
        guard let pw = getpwuid(geteuid()) else { return "root" }
        return String(cString: pw.pointee.pw_name)
    }
}

/// The result of one command run through a link, with files as stdio.
struct RunResult {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
}

extension AgentFixture {
    func run(_ link: AgentLink, _ command: String, stdin: Data? = nil, user: String = AgentFixture.user) throws -> RunResult {
        let id = UUID().uuidString.prefix(8)
        let inPath = "\(dir)/in-\(id)", outPath = "\(dir)/out-\(id)", errPath = "\(dir)/err-\(id)"
        var inFD: Int32? = nil
        if let stdin {
            _ = FileManager.default.createFile(atPath: inPath, contents: stdin)
            inFD = open(inPath, O_RDONLY)
        }
        let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer {
            if let inFD { close(inFD) }
            close(outFD); close(errFD)
            for p in [inPath, outPath, errPath] { unlink(p) }
        }
        let status = try link.run(user: user, command: command, stdin: inFD, stdout: outFD, stderr: errFD)
        return RunResult(status: status, stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
                         stderr: FileManager.default.contents(atPath: errPath) ?? Data())
    }
}
