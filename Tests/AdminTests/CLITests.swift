// The real `ody` against the real odysseyd: Qubes habits and clear errors.
import Foundation
import XCTest

struct Run { var status: Int32; var out: String; var err: String }

final class CLITests: XCTestCase {
    var dir = ""
    var daemon: Process?
    var ody = ""

    override func setUpWithError() throws {
        ody = try Repo.built("ody")
        let odysseyd = try Repo.built("odysseyd")
        dir = NSTemporaryDirectory() + "odyssey-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Repo.root + "/config/policy.d", toPath: dir + "/policy.d")
        try """
            state_dir = "state"
            admin_socket = "state/admin.sock"
            plugin_dirs = ["plugins"]
            policy_dirs = ["policy.d"]
            [vmm]
            default = "native"
            """.write(toFile: dir + "/odyssey.toml", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: odysseyd)
        p.arguments = ["--config", dir + "/odyssey.toml", "--foreground", "--ready-fd", "1"]
        let ready = Pipe()
        p.standardOutput = ready
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        XCTAssertEqual(String(decoding: ready.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "READY\n")
        daemon = p
    }

    override func tearDown() {
        if let d = daemon, d.isRunning { d.terminate(); d.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @discardableResult
    func run(_ args: String...) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ody)
        p.arguments = args
        p.environment = ["ODYSSEY_SOCKET": dir + "/state/admin.sock", "NO_COLOR": "1"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    func expectError(_ r: Run, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "exit status", file: file, line: line)
        XCTAssertTrue(r.err.contains(text), "stderr: \(r.err)", file: file, line: line)
    }

    func testDomainCommands() throws {
        let rootfs = dir + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
        var r = try run("template", "create", "mini", "--from-rootfs", rootfs, "--label", "gray")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("created template mini"), r.out)
        XCTAssertEqual(try run("create", "work", "--template", "mini", "--label", "blue", "--prop", "memory=800").status, 0)
        XCTAssertEqual(try run("create", "vault", "-t", "mini", "-l", "black").status, 0)

        r = try run("ls")
        let lines = r.out.split(separator: "\n")
        XCTAssertEqual(lines.first.map { $0.split(separator: " ").filter { !$0.isEmpty } }, ["NAME", "STATE", "CLASS", "LABEL", "TEMPLATE", "PROVIDER"])
        let work = lines.first { $0.hasPrefix("work ") }!.split(separator: " ").filter { !$0.isEmpty }
        XCTAssertEqual(work, ["work", "Halted", "AppVM", "blue", "mini", "native"])
        XCTAssertFalse(r.out.contains("\u{1b}["), "no colour when NO_COLOR is set or not a tty")
        r = try run("ls", "--json")
        let rows = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [[String: Any]]
        XCTAssertEqual(rows.first { $0["name"] as? String == "work" }?["template"] as? String, "mini")

        XCTAssertEqual(try run("prefs", "work", "memory").out, "800\n")
        XCTAssertEqual(try run("prefs", "work", "memory", "900").status, 0)
        XCTAssertEqual(try run("prefs", "work", "memory").out, "900\n")
        XCTAssertEqual(try run("prefs", "work", "memory", "--default").status, 0)
        XCTAssertEqual(try run("prefs", "work", "memory").out, "400\n")
        XCTAssertTrue(try run("prefs", "work").out.contains("memory"))
        XCTAssertEqual(try run("prefs", "--global", "default_vmm").out, "native\n")
        XCTAssertEqual(try run("tags", "work", "add", "managed").status, 0)
        XCTAssertEqual(try run("tags", "work").out, "isolation-native\nmanaged\n")
        XCTAssertEqual(try run("tags", "work", "del", "managed").status, 0)
        XCTAssertEqual(try run("features", "work", "service.cups", "1").status, 0)
        XCTAssertEqual(try run("features", "work", "service.cups").out, "1\n")
        XCTAssertEqual(try run("features", "work", "service.cups", "--unset").status, 0)
        XCTAssertTrue(try run("volume", "list", "work").out.contains("work:private"))
        XCTAssertTrue(try run("volume", "info", "work:private").out.contains("save_on_stop=True"))
        XCTAssertEqual(try run("volume", "resize", "work:private", "3GiB").status, 0)
        XCTAssertTrue(try run("volume", "info", "work:private").out.contains("size=3221225472"))
        XCTAssertTrue(try run("labels").out.contains("6      blue    0x3465a4"))

        // Clear errors for every bad name, class, label, property and state.
        expectError(try run("create", "x", "--class", "Foo", "--label", "red"), "unknown class 'Foo'")
        expectError(try run("create", "x", "-t", "mini", "--label", "pink"), "unknown label 'pink'")
        expectError(try run("create", "1x", "-t", "mini", "--label", "red"), "must start with a letter")
        expectError(try run("create", "work", "-t", "mini", "--label", "red"), "already exists")
        expectError(try run("create", "x", "-t", "nope", "--label", "red"), "no such domain: 'nope'")
        expectError(try run("create", "x", "-t", "mini", "--label", "red", "--prop", "memory=lots"), "x not created")
        XCTAssertFalse(try run("ls").out.contains("\nx "))
        expectError(try run("prefs", "work", "nope"), "Invalid property 'nope'")
        expectError(try run("prefs", "nowhere", "memory"), "no such domain: 'nowhere'")
        expectError(try run("prefs", "work", "label", "pink"), "Label does not exist: 'pink'")
        expectError(try run("shutdown", "work"), "Domain is powered off: 'work'")
        expectError(try run("kill", "work"), "Domain is powered off: 'work'")
        expectError(try run("pause", "work"), "Domain not running (either powered off or paused): 'work'")
        expectError(try run("unpause", "work"), "Domain is not paused: 'work'")
        expectError(try run("start", "work"), "Start failed")
        expectError(try run("tags", "work", "del", "nothere"), "work has no tag 'nothere'")
        expectError(try run("features", "work", "nothere"), "work has no feature 'nothere'")
        expectError(try run("volume", "info", "work:swap"), "work has no volume 'swap'")
        expectError(try run("volume", "revert", "work:private"), "no revisions")
        expectError(try run("volume", "resize", "work:private", "1GiB"), "shrinking")
        expectError(try run("volume", "resize", "work:private", "lots"), "is not a size")
        expectError(try run("remove", "-f", "mini"), "in use")

        XCTAssertEqual(try run("remove", "-f", "vault").status, 0)
        XCTAssertFalse(try run("ls").out.contains("vault"))
    }

    func testEventsCommandFollows() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ody)
        p.arguments = ["events"]
        p.environment = ["ODYSSEY_SOCKET": dir + "/state/admin.sock"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        usleep(300_000)
        XCTAssertEqual(try run("create", "t1", "--class", "TemplateVM", "--label", "red").status, 0)
        var text = ""
        let deadline = Date().addingTimeInterval(5)
        while !text.contains("domain-tag-add"), Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        p.terminate(); p.waitUntilExit()
        XCTAssertTrue(text.contains("- domain-add vm=t1\n"), text)
        XCTAssertTrue(text.contains("t1 domain-tag-add:isolation-native tag=isolation-native\n"), text)
    }
}
