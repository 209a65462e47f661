// Shared helpers for host tests: where the repo and build are, temp dirs,
// compiling C fixtures, running the real binaries.
import Foundation
import XCTest

enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // Tests/HostTests/TestSupport.swift
        return url.path
    }()

    /// The SwiftPM build directory holding odysseyd, ody and plugin libraries.
    static var buildDir: String {
        ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"] ?? root + "/.build/debug"
    }

    static func built(_ name: String) throws -> String {
        let p = buildDir + "/" + name
        guard FileManager.default.fileExists(atPath: p) else {
            throw XCTSkip("\(p) is not built; run `make test` (it builds everything before testing)")
        }
        return p
    }
}

final class TempDir {
    let path: String
    init(_ label: String = "odyssey-test") {
        path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func sub(_ name: String) -> String {
        let p = path + "/" + name
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program directly (no shell), waits, and captures its output.
@discardableResult
func runProcess(_ exe: String, _ args: [String], env: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let env { p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: e, as: UTF8.self))
}

enum Fixture {
    static let source = Repo.root + "/Tests/Fixtures/plugins/fixture_plugin.c"

    /// Compiles the fixture with `defines` into DIR/lib<name>.so and writes
    /// DIR/<name>.json declaring `id` and `factories` (kind vmm).
    static func build(_ name: String, in dir: String, defines: [String] = [], id: String = "fixture",
                      factories: [String] = ["fixture"], manifestMajor: Int = 1) throws {
        let lib = "\(dir)/lib\(name).so"
        let r = try runProcess("/usr/bin/cc", ["-shared", "-fPIC", "-Wall", "-I", Repo.root + "/Sources/PluginABI/include"]
                               + defines.map { "-D" + $0 } + ["-o", lib, source])
        XCTAssertEqual(r.status, 0, "cc failed: \(r.stderr)")
        let fs = factories.map { "{\"name\": \"\($0)\", \"kind\": \"vmm\"}" }.joined(separator: ", ")
        try """
        {"id": "\(id)", "library": "lib\(name).so", "abi": {"major": \(manifestMajor), "minor": 0},
         "version": "0.0.1", "license": "MIT", "factories": [\(fs)]}
        """.write(toFile: "\(dir)/\(name).json", atomically: true, encoding: .utf8)
    }
}

/// Starts odysseyd in the foreground with its stdout as the readiness pipe
/// (--ready-fd 1), and returns once it serves.
func startDaemon(config: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try Repo.built("odysseyd"))
    p.arguments = ["--config", config, "--foreground", "--ready-fd", "1"]
    let ready = Pipe()
    p.standardOutput = ready
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let line = ready.fileHandleForReading.readDataToEndOfFile()
    XCTAssertEqual(String(decoding: line, as: UTF8.self), "READY\n", "daemon signals readiness")
    return p
}
