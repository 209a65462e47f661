// AddonHarness: the add-ons exactly as a domain runs them, without the
// domains. It builds a real add-ons view (AddonView.build, the code odysseyd
// uses) from the real manifests and the libraries SwiftPM built, then runs
// services and commands through the real odyssey-addon-run. A command's
// qrexec calls go to a loopback client (the runner's ODYSSEY_ADDON_CALL)
// that runs the service locally "in" the target domain: HOME is that
// domain's pretend home, QREXEC_REMOTE_DOMAIN the caller and
// QREXEC_REMOTE_DOMAIN_UUID the caller's uuid (one per name, made on first
// use; `recreate` gives a name a new one). What the loopback
// cannot show is the host's policy and the channel: IntegrationTests runs
// the add-ons in real domains for that.
import Foundation
import XCTest
@testable import Host

final class AddonHarness {
    struct Result {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var buildDir: String { ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? packageRoot + "/.build/debug" }

    let root: String          // temp dir of this harness; removed at deinit
    let view: String          // the add-ons view
    let homes: String         // one pretend HOME per domain name
    let loopback: String      // the loopback qrexec client
    let callLog: String       // one line per loopback call: "SOURCE TARGET SERVICE[+ARG]"
    let uuids: String         // one file per domain name: its uuid
    /// Where "@default" and "@dispvm" calls go.
    var defaultTarget = "target"
    private var packages: [AddonPackage]

    init(addons: [String]) throws {
        root = NSTemporaryDirectory() + "addon-harness-" + UUID().uuidString
        view = root + "/view"
        homes = root + "/homes"
        loopback = root + "/loopback"
        callLog = root + "/calls.log"
        uuids = root + "/uuids"
        try FileManager.default.createDirectory(atPath: homes, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: uuids, withIntermediateDirectories: true)
        // Each harness its own runtime directory: add-ons keep state there
        // (consents, busy slots) that must not mix with other tests' state.
        try FileManager.default.createDirectory(atPath: root + "/run", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // Homes and the view must be reachable by a service that drops root.
        chmod(root, 0o755)
        chmod(homes, 0o755)
        _ = FileManager.default.createFile(atPath: callLog, contents: nil)
        packages = try addons.map { try Self.package($0) }
        try Self.loopbackScript.write(toFile: loopback, atomically: true, encoding: .utf8)
        chmod(loopback, 0o755)
        try rebuild()
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// The package as odysseyd would make it from the manifest in the tree.
    static func package(_ id: String) throws -> AddonPackage {
        let dir = packageRoot + "/Plugins/addons/" + id
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(id).json"))
        let m = try PluginManifest.decode(data)
        guard let f = m.factories.first(where: { $0.kind == .addon }) else { throw XCTSkip("\(id): no add-on factory") }
        let lib = buildDir + "/" + m.library
        guard FileManager.default.fileExists(atPath: lib) else { throw XCTSkip("\(lib) is not built (swift build first)") }
        var config: [String: String] = [:]
        for (k, v) in f.config ?? [:] { if let d = v.default { config[k] = d } }
        let policy = try f.policy.map { try String(contentsOfFile: "\(dir)/\($0)", encoding: .utf8) }
        return AddonPackage(id: m.id, libraryPath: lib, factory: f.name, services: f.services, commands: f.commands,
                            events: f.events, policyFile: f.policy, policyText: policy, config: config)
    }

    func rebuild() throws {
        let runner = Self.buildDir + "/odyssey-addon-run"
        guard FileManager.default.fileExists(atPath: runner) else { throw XCTSkip("\(runner) is not built") }
        try AddonView.build(at: view, packages: packages, runner: runner)
    }

    /// Sets config keys of an add-on's [addon.FACTORY] section (merged over the defaults).
    func setConfig(_ factory: String, _ values: [String: String]) throws {
        for i in packages.indices where packages[i].factory == factory {
            for (k, v) in values { packages[i].config[k] = v }
        }
        try rebuild()
    }

    /// The pretend HOME of domain `name` (created on first use).
    func home(_ name: String) -> String {
        let h = homes + "/" + name
        try? FileManager.default.createDirectory(atPath: h, withIntermediateDirectories: true)
        return h
    }

    /// The uuid of domain `name` as the host would pass it (made on first use).
    func uuid(_ name: String) -> String {
        let path = uuids + "/" + name
        if let u = try? String(contentsOfFile: path, encoding: .utf8) { return u }
        let u = UUID().uuidString.lowercased()
        try? u.write(toFile: path, atomically: true, encoding: .utf8)
        return u
    }

    /// Domain `name` removed and created again: same name, a new uuid.
    func recreate(_ name: String) {
        try? FileManager.default.removeItem(atPath: uuids + "/" + name)
        _ = uuid(name)
    }

    /// The loopback calls made so far, one "SOURCE TARGET SERVICE[+ARG]" each.
    var calls: [String] {
        ((try? String(contentsOfFile: callLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    private func baseEnvironment(domain: String) -> [String: String] {
        [
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": home(domain),
            "USER": NSUserName(),
            "ODYSSEY_ADDON_CALL": loopback,
            "ODY_LOOPBACK_SOURCE": domain,
            "ODY_LOOPBACK_DEFAULT": defaultTarget,
            "ODY_LOOPBACK_HOMES": homes,
            "ODY_LOOPBACK_LOG": callLog,
            "ODY_LOOPBACK_UUIDS": uuids,
            "XDG_RUNTIME_DIR": root + "/run",
        ]
    }

    /// Runs a service as the agent would in domain `domain`, called by `source`.
    func runService(_ service: String, argument: String? = nil, source: String, in domain: String,
                    stdin: [UInt8] = [], stdinPath: String? = nil, env: [String: String] = [:],
                    side: PluginManifest.AddonService.Side = .domain) throws -> Result {
        var e = baseEnvironment(domain: domain)
        e["QREXEC_REMOTE_DOMAIN"] = source
        e["QREXEC_REMOTE_DOMAIN_UUID"] = uuid(source)
        e["QREXEC_SERVICE_FULL_NAME"] = service + (argument.map { "+" + $0 } ?? "")
        for (k, v) in env { e[k] = v }
        let dir = side == .domain ? "rpc" : "admin-rpc"
        return try run(["\(view)/\(dir)/\(service)"] + (argument.map { [$0] } ?? []), env: e, stdin: stdin,
                       stdinPath: stdinPath, cwd: home(domain))
    }

    /// Starts a service as runService does and leaves it running: stdin is
    /// a pipe the caller writes and closes (a call in progress), stdout and
    /// stderr go to files read once it has ended (`finish`).
    func startService(_ service: String, source: String, in domain: String, env: [String: String] = [:]) throws -> RunningService {
        var e = baseEnvironment(domain: domain)
        e["QREXEC_REMOTE_DOMAIN"] = source
        e["QREXEC_REMOTE_DOMAIN_UUID"] = uuid(source)
        e["QREXEC_SERVICE_FULL_NAME"] = service
        for (k, v) in env { e[k] = v }
        let id = UUID().uuidString
        let r = RunningService(process: Process(), stdin: Pipe(), stdoutPath: root + "/stdout-" + id, stderrPath: root + "/stderr-" + id)
        _ = FileManager.default.createFile(atPath: r.stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: r.stderrPath, contents: nil)
        r.process.executableURL = URL(fileURLWithPath: "\(view)/rpc/\(service)")
        r.process.environment = e
        r.process.currentDirectoryURL = URL(fileURLWithPath: home(domain))
        r.process.standardInput = r.stdin
        r.process.standardOutput = FileHandle(forWritingAtPath: r.stdoutPath)
        r.process.standardError = FileHandle(forWritingAtPath: r.stderrPath)
        try r.process.run()
        return r
    }

    struct RunningService {
        let process: Process
        let stdin: Pipe
        let stdoutPath: String
        let stderrPath: String

        func write(_ bytes: [UInt8]) { stdin.fileHandleForWriting.write(Data(bytes)) }

        /// Closes stdin (the rest of the stream is `rest`), waits, and reports.
        func finish(_ rest: [UInt8] = []) -> Result {
            write(rest)
            try? stdin.fileHandleForWriting.close()
            process.waitUntilExit()
            let out = (try? Data(contentsOf: URL(fileURLWithPath: stdoutPath))) ?? Data()
            let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            return Result(status: process.terminationStatus, stdout: Array(out), stderr: err)
        }
    }

    /// Runs a client command as a user of domain `domain` would.
    func runCommand(_ argv: [String], in domain: String, stdin: [UInt8] = [], stdinPath: String? = nil,
                    env: [String: String] = [:], cwd: String? = nil) throws -> Result {
        var e = baseEnvironment(domain: domain)
        for (k, v) in env { e[k] = v }
        return try run(["\(view)/bin/\(argv[0])"] + argv.dropFirst(), env: e, stdin: stdin, stdinPath: stdinPath,
                       cwd: cwd ?? home(domain))
    }

    /// Runs argv with stdio in files (no pipe can fill up and stall).
    func run(_ argv: [String], env: [String: String], stdin: [UInt8], stdinPath: String?, cwd: String) throws -> Result {
        let id = UUID().uuidString
        let inPath = stdinPath ?? root + "/stdin-" + id
        if stdinPath == nil { _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin)) }
        let outPath = root + "/stdout-" + id, errPath = root + "/stderr-" + id
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            if stdinPath == nil { try? FileManager.default.removeItem(atPath: inPath) }
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.standardInput = FileHandle(forReadingAtPath: inPath)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        let out = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let status = p.terminationReason == .exit ? p.terminationStatus : 128 + p.terminationStatus
        return Result(status: status, stdout: Array(out), stderr: err)
    }

    /// The loopback qrexec client the runner execs as
    /// `loopback --no-filter-escape-chars-stdout --filter-escape-chars-stderr -- TARGET SERVICE[+ARG]`, stdin and
    /// stdout the call's socket. ODY_LOOPBACK_DENY (space-separated service
    /// names) stands in for a policy deny: exit 126, as ody-call would.
    static let loopbackScript = #"""
    #!/bin/sh
    # AddonHarness loopback qrexec client: runs SERVICE here, as if in TARGET.
    [ "$1" = --no-filter-escape-chars-stdout ] && shift
    [ "$1" = --filter-escape-chars-stderr ] && shift
    [ "$1" = -- ] && shift
    requested=$1
    case "$1" in
      @default|@dispvm|@dispvm:*|'') target=$ODY_LOOPBACK_DEFAULT ;;
      @adminvm|dom0) target=dom0 ;;
      *) target=$1 ;;
    esac
    service=${2%%+*}
    arg=
    case "$2" in *+*) arg=${2#*+} ;; esac
    echo "$ODY_LOOPBACK_SOURCE $target $2" >> "$ODY_LOOPBACK_LOG"
    for denied in $ODY_LOOPBACK_DENY; do
      if [ "$denied" = "$service" ]; then echo "Request refused" >&2; exit 126; fi
    done
    dir=rpc
    [ "$target" = dom0 ] && dir=admin-rpc
    view=$(dirname "$ODYSSEY_ADDON_CALL")/view
    mkdir -p "$ODY_LOOPBACK_HOMES/$target"
    export QREXEC_REMOTE_DOMAIN="$ODY_LOOPBACK_SOURCE" QREXEC_REQUESTED_TARGET="$requested"
    uuid_file="$ODY_LOOPBACK_UUIDS/$ODY_LOOPBACK_SOURCE"
    [ -s "$uuid_file" ] || cat /proc/sys/kernel/random/uuid | tr -d '\n' > "$uuid_file"
    QREXEC_REMOTE_DOMAIN_UUID=$(cat "$uuid_file")
    export QREXEC_REMOTE_DOMAIN_UUID
    export HOME="$ODY_LOOPBACK_HOMES/$target" ODY_LOOPBACK_SOURCE="$target"
    cd "$HOME" || exit 125
    if [ -n "$arg" ]; then exec "$view/$dir/$service" "$arg"; else exec "$view/$dir/$service"; fi
    """#
}

/// The harness itself, against the example-free minimum: the view is what
/// the runner reads, and a refused call reports like ody-call.
final class AddonHarnessTests: XCTestCase {
    func testViewListsEveryFirstPartyAddon() throws {
        let h = try AddonHarness(addons: ["filecopy", "open-in-vm", "split-gpg", "pdf-converter"])
        let index = try String(contentsOfFile: h.view + "/index", encoding: .utf8)
        for line in ["service domain qubes.Filecopy filecopy libaddon-filecopy.so filecopy",
                     "command ody-copy filecopy libaddon-filecopy.so filecopy",
                     "service admin odyssey.GpgConsent split-gpg libaddon-split-gpg.so split-gpg",
                     "command ody-convert-pdf pdf-converter libaddon-pdf-converter.so pdf-converter"] {
            XCTAssertTrue(index.contains(line + "\n"), "index lacks: \(line)\n\(index)")
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: h.view + "/bin/ody-copy"), "../odyssey-addon-run")
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.view + "/policy.d/70-filecopy.policy"))
    }

    func testServiceWithoutCallerIsRefused() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let r = try h.run([h.view + "/rpc/qubes.Filecopy"], env: ["PATH": "/usr/bin:/bin"], stdin: [], stdinPath: nil, cwd: "/")
        XCTAssertEqual(r.status, 125)
        XCTAssertTrue(r.stderr.contains("QREXEC_REMOTE_DOMAIN"), r.stderr)
    }

    func testUnknownCommandIs127() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        try FileManager.default.createSymbolicLink(atPath: h.view + "/bin/ody-nothing", withDestinationPath: "../odyssey-addon-run")
        let r = try h.runCommand(["ody-nothing"], in: "work")
        XCTAssertEqual(r.status, 127)
        XCTAssertTrue(r.stderr.contains("no installed add-on provides the command ody-nothing"), r.stderr)
    }
}
