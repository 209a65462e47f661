// Loads the real plugin libraries through the host's own PluginLoader and
// Backends, from a temp plugin directory holding copies of the built .so
// files and their manifests, exactly as odysseyd would.
import Foundation
import Host
import Logging
import PluginABI
import XCTest

enum Build {
    /// The repository (or dev package) root: Tests/ConformanceTests/Harness.swift is three levels down.
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `ODYSSEY_BUILD_DIR`, else `<repo>/.build/debug`.
    static var dir: String {
        ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? repoRoot + "/.build/debug"
    }

    static func library(_ product: String) -> String { "\(dir)/lib\(product).so" }
    static func manifest(_ product: String) -> String { "\(repoRoot)/Plugins/\(product)/\(product).json" }
    static func isBuilt(_ product: String) -> Bool { FileManager.default.fileExists(atPath: library(product)) }
}

/// A temp directory with staged plugins, a config file and a state dir, plus
/// the host objects built from them. Removed on deinit.
final class HostFixture {
    let dir: String
    let events = EventBus()
    let recorder: EventRecorder
    let config: OdysseyConfig
    let backends: Backends

    /// Stages `products` (failing if one is not built) and loads them with
    /// `configBody`, in which `@DIR@` stands for the fixture's temp directory.
    /// `helpers` are executables a plugin runs from its own directory (the native jailer).
    init(products: [String], helpers: [String] = [], configBody: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fm = FileManager.default
        dir = NSTemporaryDirectory() + "odyssey-conformance-\(UUID().uuidString.prefix(8))"
        let plugins = dir + "/plugins"
        try fm.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        for p in products {
            guard Build.isBuilt(p) else {
                try? fm.removeItem(atPath: dir)
                XCTFail("\(Build.library(p)) is missing: run `swift build` first (`make test` builds before testing)", file: file, line: line)
                throw FixtureError.notBuilt(p)
            }
            try fm.copyItem(atPath: Build.library(p), toPath: "\(plugins)/lib\(p).so")
            try fm.copyItem(atPath: Build.manifest(p), toPath: "\(plugins)/\(p).json")
        }
        for h in helpers where fm.fileExists(atPath: "\(Build.dir)/\(h)") {
            try fm.copyItem(atPath: "\(Build.dir)/\(h)", toPath: "\(plugins)/\(h)")
        }
        let text = """
        plugin_dirs = ["\(plugins)"]
        state_dir = "\(dir)/state"
        admin_socket = "\(dir)/admin.sock"
        \(configBody.replacingOccurrences(of: "@DIR@", with: dir))
        """
        let path = dir + "/odyssey.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        config = try OdysseyConfig.parse(text, path: path)
        var logger = Logger(label: "conformance")
        logger.logLevel = .warning
        recorder = EventRecorder(events)
        backends = Backends.load(config: config, logger: logger, events: events)
    }

    deinit {
        backends.closeAll()
        // ODYSSEY_TEST_KEEP=1 keeps the directory (console logs, state) for a look afterwards.
        if ProcessInfo.processInfo.environment["ODYSSEY_TEST_KEEP"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        } else {
            print("kept \(dir)")
        }
    }
}

enum FixtureError: Error { case notBuilt(String) }

/// Every HostEvent published on a bus, with waiting.
final class EventRecorder: @unchecked Sendable {
    private let cond = NSCondition()
    private var events: [HostEvent] = []

    init(_ bus: EventBus) {
        bus.subscribe { [weak self] e in
            guard let self else { return }
            self.cond.lock()
            self.events.append(e)
            self.cond.broadcast()
            self.cond.unlock()
        }
    }

    var all: [HostEvent] {
        cond.lock(); defer { cond.unlock() }
        return events
    }

    /// Waits until an event matching `match` has arrived (at any time since the recorder started).
    func wait(timeout: TimeInterval = 5, _ match: (HostEvent) -> Bool) -> HostEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock(); defer { cond.unlock() }
        while true {
            if let e = events.first(where: match) { return e }
            if !cond.wait(until: deadline) { return events.first(where: match) }
        }
    }

    func lifecycle(_ source: String, _ domain: String, _ state: PowerState, timeout: TimeInterval = 5) -> HostEvent? {
        wait(timeout: timeout) { $0.kind == .lifecycle && $0.source == source && $0.domain == domain && $0.state == state }
    }
}

/// Runs `body`, expecting an OdysseyError with `code`; returns it for further checks.
@discardableResult
func expectError(_ code: OdysseyError.Code, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () throws -> Void) -> OdysseyError? {
    do {
        try body()
        XCTFail("\(what): succeeded, expected \(code)", file: file, line: line)
        return nil
    } catch {
        guard let error = error as? OdysseyError else {
            XCTFail("\(what): threw \(error), not an OdysseyError", file: file, line: line)
            return nil
        }
        XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, "\(what): empty error message", file: file, line: line)
        return error
    }
}
