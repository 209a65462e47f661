// An in-process daemon on a temp state dir (real SQLite store, real policy
// files copied from config/policy.d plus the grants a test adds), and helpers
// to call admin methods as dom0 or as a domain, in process or over the socket.
import Foundation
import Logging
import XCTest
@testable import Host

enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var buildDir: String {
        ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? root + "/.build/debug"
    }

    static func built(_ name: String) throws -> String {
        let p = buildDir + "/" + name
        guard FileManager.default.fileExists(atPath: p) else { throw XCTSkip("\(p) is not built") }
        return p
    }
}

final class AdminHarness: @unchecked Sendable {
    let dir: String
    let daemon: Daemon
    let methods: AdminMethods
    var socket: String { dir + "/state/admin.sock" }
    private var started = false

    /// `grants`: include file name (admin-local-rwx...) -> rules appended to it.
    /// `config`: extra top-level lines for odyssey.toml.
    init(grants: [String: String] = [:], eventQueueLimit: Int = 10_000, config: String = "") throws {
        dir = NSTemporaryDirectory() + "odyssey-admin-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Repo.root + "/config/policy.d", toPath: dir + "/policy.d")
        for (file, rules) in grants {
            let p = dir + "/policy.d/include/" + file
            try (String(contentsOfFile: p, encoding: .utf8) + rules + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        }
        try """
            state_dir = "state"
            admin_socket = "state/admin.sock"
            plugin_dirs = ["plugins"]
            policy_dirs = ["policy.d"]
            \(config)
            [vmm]
            default = "native"
            """.write(toFile: dir + "/odyssey.toml", atomically: true, encoding: .utf8)
        let logger = Logger(label: "admin-test") { _ in SwiftLogNoOpLogHandler() }
        daemon = try Daemon(configPath: dir + "/odyssey.toml", logger: logger)
        methods = AdminMethods(daemon: daemon, eventQueueLimit: eventQueueLimit)
    }

    deinit {
        methods.close()
        if started { daemon.stop() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Serves the admin socket (in this process).
    func startSocket() throws {
        try daemon.start()
        started = true
    }

    func call(_ method: String, _ arg: String = "", dest: String = "dom0", payload: String = "", as caller: String = "dom0") -> AdminResponse {
        methods.handle(AdminRequest(method: method, argument: arg, dest: dest, payload: Array(payload.utf8)), callerSource: caller)
    }

    @discardableResult
    func ok(_ method: String, _ arg: String = "", dest: String = "dom0", payload: String = "", as caller: String = "dom0",
            file: StaticString = #filePath, line: UInt = #line) -> String {
        switch call(method, arg, dest: dest, payload: payload, as: caller) {
        case .success(let b): return String(decoding: b, as: UTF8.self)
        case .failure(let e):
            XCTFail("\(method)+\(arg) \(dest) as \(caller): \(e)", file: file, line: line)
            return ""
        }
    }

    func fails(_ method: String, _ arg: String = "", dest: String = "dom0", payload: String = "", as caller: String = "dom0",
               file: StaticString = #filePath, line: UInt = #line) -> AdminError {
        switch call(method, arg, dest: dest, payload: payload, as: caller) {
        case .success(let b):
            XCTFail("\(method)+\(arg) \(dest) as \(caller) succeeded: \(String(decoding: b, as: UTF8.self))", file: file, line: line)
            return AdminError("none", "")
        case .failure(let e): return e
        }
    }

    /// A domain with its volumes, through the API.
    func create(_ name: String, klass: String = "AppVM", template: String = "", label: String = "red", as caller: String = "dom0") {
        ok("admin.vm.Create.\(klass)", template, payload: "name=\(name) label=\(label)", as: caller)
    }
}

/// One raw request over the socket; returns the whole reply.
func rawCall(_ socket: String, _ bytes: [UInt8], shutdownWrite: Bool = true) throws -> [UInt8] {
    let fd = try UnixSocket.connect(path: socket)
    defer { close(fd) }
    try Sys.writeAll(fd, bytes, what: "test request")
    if shutdownWrite { shutdown(fd, Int32(SHUT_WR)) }
    return try Sys.readAll(fd, limit: 1 << 24, what: "test reply")
}

/// Reads admin.Events frames from a connected fd.
final class EventReader: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    struct Event: Equatable { var subject: String; var name: String; var args: [String] }

    /// The next event, or nil at EOF / timeout.
    func next(timeoutMs: Int32 = 5000) -> Event? {
        while true {
            if let e = parse() { return e }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, timeoutMs) == 1 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    private func parse() -> Event? {
        // 1\0subject\0event\0(k\0v\0)*\0
        guard buffer.count >= 2 else { return nil }
        var fields: [String] = []
        var start = 2, i = 2
        while i < buffer.count {
            if buffer[i] == 0 {
                if i == start && fields.count >= 2 && (fields.count - 2) % 2 == 0 {
                    buffer.removeFirst(i + 1)
                    return Event(subject: fields[0], name: fields[1], args: Array(fields[2...]))
                }
                fields.append(String(decoding: buffer[start..<i], as: UTF8.self))
                start = i + 1
            }
            i += 1
        }
        return nil
    }
}
