// The real odysseyd binary: start, answer `ody`, reload on SIGHUP, stop on SIGTERM.
import Foundation
import XCTest

final class DaemonTests: XCTestCase {
    func testStartStatusPluginsReloadStop() throws {
        let ody = try Repo.built("ody")
        let t = TempDir()
        let plugins = t.sub("plugins")
        try Fixture.build("fixture", in: plugins)
        let config = t.write("odyssey.toml", """
            state_dir = "state"
            admin_socket = "state/admin.sock"
            plugin_dirs = ["plugins"]
            [vmm]
            default = "fixture"
            """)
        let daemon = try startDaemon(config: config)
        defer { if daemon.isRunning { daemon.terminate() } }
        let sock = t.path + "/state/admin.sock"

        let status = try runProcess(ody, ["status", "--socket", sock])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("plugins      1 loaded, 0 refused"), status.stdout)

        var listing = try runProcess(ody, ["plugins", "--json"], env: ["ODYSSEY_SOCKET": sock])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        XCTAssertTrue(listing.stdout.contains("\"id\" : \"fixture\""), listing.stdout)

        // A plugin added later appears after SIGHUP, and a broken one is listed as refused.
        try Fixture.build("second", in: plugins, defines: ["ID=\"second\"", "FACTORY=\"second\""], id: "second", factories: ["second"])
        try Fixture.build("broken", in: plugins, defines: ["ENTRY_FAILS"], id: "broken", factories: ["broken"])
        kill(daemon.processIdentifier, SIGHUP)
        var reloaded = false
        for _ in 0..<100 {
            listing = try runProcess(ody, ["plugins"], env: ["ODYSSEY_SOCKET": sock])
            if listing.stdout.contains("second 0.0.1") { reloaded = true; break }
            usleep(20_000)
        }
        XCTAssertTrue(reloaded, "reload picked up the new plugin: \(listing.stdout)")
        XCTAssertTrue(listing.stdout.contains("broken.json: entry returned -8"), listing.stdout)

        // A bad config on reload keeps the running one.
        try "state_dir = 3\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        usleep(100_000)
        XCTAssertEqual(try runProcess(ody, ["status", "--socket", sock]).status, 0, "daemon still serves after a bad reload")

        daemon.terminate()   // SIGTERM
        daemon.waitUntilExit()
        XCTAssertEqual(daemon.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sock), "socket removed on stop")
        let after = try runProcess(ody, ["status", "--socket", sock])
        XCTAssertEqual(after.status, 1)
        XCTAssertTrue(after.stderr.contains("cannot reach odysseyd"), after.stderr)
    }

    func testBadConfigFailsWithTheKey() throws {
        let t = TempDir()
        let config = t.write("odyssey.toml", "plugin_dir = [\"x\"]\n")
        let r = try runProcess(try Repo.built("odysseyd"), ["--config", config, "--foreground"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("plugin_dir: unknown key"), r.stderr)
    }

    func testUnknownBackendKeyStopsStartup() throws {
        let t = TempDir()
        let plugins = t.sub("plugins")
        try Fixture.build("fixture", in: plugins)
        let config = t.write("odyssey.toml", "state_dir = \"s\"\nadmin_socket = \"s/a.sock\"\nplugin_dirs = [\"plugins\"]\n[vmm.fixture]\nurl = \"x\"\n")
        let r = try runProcess(try Repo.built("odysseyd"), ["--config", config, "--foreground"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("[vmm.fixture] url: unknown key"), r.stderr)
    }
}
