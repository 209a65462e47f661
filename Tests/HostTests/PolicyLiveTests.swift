// The daemon's live policy: loaded at start, reloaded on file change
// (inotify) and SIGHUP, fail-closed while broken; and `ody policy` offline.
import Foundation
import XCTest

final class PolicyLiveTests: XCTestCase {
    private func startPolicyDaemon(_ t: TempDir, policy: String) throws -> (Process, String, String) {
        let dir = t.sub("policy.d")
        try policy.write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        let config = t.write("odyssey.toml", "state_dir = \"state\"\nadmin_socket = \"state/admin.sock\"\nplugin_dirs = []\npolicy_dirs = [\"policy.d\"]\n")
        return (try startDaemon(config: config), t.path + "/state/admin.sock", dir)
    }

    private func eval(_ sock: String, _ args: [String]) throws -> ProcessResult {
        try runProcess(try Repo.built("ody"), ["policy", "eval", "--socket", sock] + args)
    }

    /// Polls until `body` is true (reload happens on another thread).
    private func eventually(_ what: String, _ body: () throws -> Bool) rethrows {
        for _ in 0..<200 { if try body() { return }; usleep(20_000) }
        XCTFail("timed out waiting for: \(what)")
    }

    func testLiveEvalReloadOnChangeAndFailClosed() throws {
        let t = TempDir()
        let (daemon, sock, dir) = try startPolicyDaemon(t, policy: "test.Svc * dom0 @adminvm deny\n")
        defer { daemon.terminate(); daemon.waitUntilExit() }

        var r = try eval(sock, ["test.Svc", "dom0", "dom0", "--explain"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("deny"), r.stdout)
        XCTAssertTrue(r.stdout.contains("rule: 50-test.policy:1"), r.stdout)

        // Only dom0 exists before the domain store, and dom0 -> dom0 is a
        // loopback (always refused), so reloads are seen in the deciding rule.
        // A file change is picked up without a signal (inotify).
        try "# edited\ntest.Svc * dom0 @adminvm deny notify=no\n".write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        try eventually("new rule after edit") { try eval(sock, ["test.Svc", "dom0", "dom0"]).stdout.contains("rule: 50-test.policy:2") }

        // A broken policy denies everything and `ody policy check` says why.
        try "test.Svc * dom0 @adminvm deny\nbroken line\n".write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        try eventually("deny-all while broken") { try eval(sock, ["test.Svc", "dom0", "dom0"]).stdout.contains("policy failed to load") }
        let check = try runProcess(try Repo.built("ody"), ["policy", "check", "--socket", sock])
        XCTAssertEqual(check.status, 1)
        XCTAssertTrue(check.stderr.contains("50-test.policy:2: wrong number of fields"), check.stderr)
        r = try eval(sock, ["test.Svc", "dom0", "dom0"])
        XCTAssertTrue(r.stdout.hasPrefix("deny"), r.stdout)

        // Fixed again: SIGHUP also reloads.
        try "\n\ntest.Svc * dom0 @adminvm deny\n".write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        try eventually("loaded after fix") { try eval(sock, ["test.Svc", "dom0", "dom0"]).stdout.contains("rule: 50-test.policy:3") }
        XCTAssertEqual(try runProcess(try Repo.built("ody"), ["policy", "check", "--socket", sock]).status, 0)
    }

    func testRuntimeDirectoryWinsAClash() throws {
        let t = TempDir()
        let (daemon, sock, _) = try startPolicyDaemon(t, policy: "test.Svc * dom0 @adminvm deny\n")
        defer { daemon.terminate(); daemon.waitUntilExit() }
        try "\ntest.Svc * dom0 @adminvm deny\n".write(toFile: t.path + "/state/policy.d/50-test.policy", atomically: true, encoding: .utf8)
        try eventually("runtime file overrides") { try eval(sock, ["test.Svc", "dom0", "dom0"]).stdout.contains("rule: 50-test.policy:2") }
    }

    /// Issue 11, finding 12: a directory made after start is watched like the
    /// others, so revoking a grant there takes effect (and `ody policy check`
    /// reports what is on disk). The rule count in `ody status` is read from
    /// the live policy without any reload of its own: only the watcher moves it.
    func testIncludeDirectoryCreatedAfterStartIsWatched() throws {
        let t = TempDir()
        let (daemon, sock, dir) = try startPolicyDaemon(t, policy: "test.Svc * @anyvm @anyvm deny\n")
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let ody = try Repo.built("ody")
        let liveRules = { () throws -> String in try runProcess(ody, ["status", "--socket", sock]).stdout }

        try FileManager.default.createDirectory(atPath: dir + "/include", withIntermediateDirectories: false)
        usleep(300_000)   // the watcher has seen the new directory before anything is written in it
        try "test.Svc * work @adminvm allow\n".write(toFile: dir + "/include/grant", atomically: false, encoding: .utf8)
        try "!include include/grant\ntest.Svc * @anyvm @anyvm deny\n".write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        try eventually("grant loaded") { try liveRules().contains("2 rules loaded") }
        XCTAssertTrue(try eval(sock, ["test.Svc", "work", "dom0"]).stdout.hasPrefix("allow"))

        // Revoke: the line goes from the file in the late directory.
        try "# revoked\n".write(toFile: dir + "/include/grant", atomically: false, encoding: .utf8)
        try eventually("revocation seen by the watcher") { try liveRules().contains("1 rules loaded") }
        XCTAssertTrue(try eval(sock, ["test.Svc", "work", "dom0"]).stdout.hasPrefix("deny"))

        // A directory made later still, one level deeper, is watched too.
        try FileManager.default.createDirectory(atPath: dir + "/include/more", withIntermediateDirectories: false)
        try "test.Svc * work @adminvm allow\n".write(toFile: dir + "/include/more/grant", atomically: false, encoding: .utf8)
        try "!include include/more/grant\ntest.Svc * @anyvm @anyvm deny\n".write(toFile: dir + "/50-test.policy", atomically: true, encoding: .utf8)
        try eventually("deeper grant loaded") { try liveRules().contains("2 rules loaded") }
        try "\n".write(toFile: dir + "/include/more/grant", atomically: false, encoding: .utf8)
        try eventually("deeper revocation seen") { try liveRules().contains("1 rules loaded") }
        XCTAssertEqual(try runProcess(ody, ["policy", "check", "--socket", sock]).status, 0)
    }

    func testOfflineCheckAndBatchEval() throws {
        let ody = try Repo.built("ody")
        let t = TempDir()
        let pol = t.sub("pol")
        try "svc.A * work @default allow target=vault\nsvc.B * @anyvm @anyvm ask\n".write(toFile: pol + "/50-a.policy", atomically: true, encoding: .utf8)
        let domains = t.write("domains.json", """
            {"domains": {"dom0": {"type": "AdminVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null, "power_state": "Running", "uuid": "00000000-0000-0000-0000-000000000000", "internal": false},
             "work": {"type": "AppVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null, "power_state": "Running", "uuid": "11111111-1111-1111-1111-111111111111", "internal": false},
             "vault": {"type": "AppVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null, "power_state": "Halted", "uuid": "22222222-2222-2222-2222-222222222222", "internal": false}}}
            """)
        let requests = t.write("requests.jsonl", """
            {"service": "svc.A", "argument": "+", "source": "work", "target": ""}
            {"service": "svc.B", "argument": "+x", "source": "work", "target": "vault"}
            {"service": "svc.C", "argument": "+", "source": "work", "target": "vault"}
            """)
        let r = try runProcess(ody, ["policy", "eval", "--policy-dir", pol, "--domains", domains, "--requests", requests])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0]["resolution"] as? String, "allow")
        XCTAssertEqual(lines[0]["target"] as? String, "vault")
        XCTAssertEqual(lines[0]["rule"] as? String, "50-a.policy:1")
        XCTAssertEqual(lines[1]["resolution"] as? String, "ask")
        XCTAssertEqual(lines[1]["targets_for_ask"] as? [String], ["vault"], "@anyvm excludes dom0; the source is removed")
        XCTAssertEqual(lines[2]["resolution"] as? String, "deny")
        XCTAssertTrue(lines[2]["rule"] is NSNull)

        // Offline check: exit 1 with FILE:LINE on errors, and the batch reports policy_error first.
        try "svc.A * work\n".write(toFile: pol + "/60-bad.policy", atomically: true, encoding: .utf8)
        let check = try runProcess(ody, ["policy", "check", "--policy-dir", pol])
        XCTAssertEqual(check.status, 1)
        XCTAssertTrue(check.stderr.contains("\(pol)/60-bad.policy:1: wrong number of fields"), check.stderr)
        let bad = try runProcess(ody, ["policy", "eval", "--policy-dir", pol, "--domains", domains, "--requests", requests])
        let first = bad.stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.hasPrefix("{\"policy_error\""), first)
        XCTAssertEqual(bad.stdout.split(separator: "\n").count, 4)
        XCTAssertEqual(bad.stdout.components(separatedBy: "\"deny\"").count - 1, 3)

        // Bad CLI use is explained.
        let usage = try runProcess(ody, ["policy", "eval", "--policy-dir", pol])
        XCTAssertNotEqual(usage.status, 0)
        XCTAssertTrue(usage.stderr.contains("batch mode needs --policy-dir, --domains and --requests together"), usage.stderr)
    }

    func testShippedDefaultPolicyLoadsClean() throws {
        let r = try runProcess(try Repo.built("ody"), ["policy", "check", "--policy-dir", Repo.root + "/config/policy.d"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("warning"), r.stdout)
    }
}
