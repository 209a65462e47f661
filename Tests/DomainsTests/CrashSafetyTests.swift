import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// SIGKILL a writer at random moments: the store must reopen, pass
/// PRAGMA integrity_check, and hold every change reported committed.
/// The writer is this test binary itself, running `testChildWriter` with
/// ODYSSEY_CRASH_CHILD set.
final class CrashSafetyTests: XCTestCase {
    /// The child: commits in a loop and appends "kind n" to the report file after each commit returned.
    func testChildWriter() throws {
        guard let dir = getenv("ODYSSEY_CRASH_CHILD").map({ String(cString: $0) }),
              let round = getenv("ODYSSEY_CRASH_ROUND").map({ String(cString: $0) }) else { return }
        let s = try openStore(dir)
        let report = open(dir + "/report", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        var n = 0
        while true {
            if n % 5 == 0 {
                // A multi-statement transaction: domain row + properties + tag.
                try s.create("r\(round)d\(n)", class: .standaloneVM, label: "green",
                             properties: ["memory": "\(500 + n)", "vcpus": "3"], caller: "crash")
                writeLine(report, "create r\(round)d\(n)")
            } else {
                try s.setFeature("r\(round)f\(n)", of: "dom0", to: "\(n)")
                writeLine(report, "feature r\(round)f\(n)")
            }
            n += 1
        }
    }

    private func writeLine(_ fd: Int32, _ s: String) {
        let b = Array((s + "\n").utf8)
        _ = b.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }

    func testSIGKILLNeverLosesOrCorruptsCommittedChanges() throws {
        let dir = makeTempDir(self, "crash")
        let exe = CommandLine.arguments[0]
        var g = SystemRandomNumberGenerator()
        var totalReported = 0
        for round in 0..<20 {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            let argv = [exe, "DomainsTests.CrashSafetyTests/testChildWriter"]
            var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            var env: [UnsafeMutablePointer<CChar>?] = [strdup("ODYSSEY_CRASH_CHILD=\(dir)"), strdup("ODYSSEY_CRASH_ROUND=\(round)"),
                                                      strdup("PATH=/usr/bin:/bin"), nil]
            var pid: pid_t = 0
            XCTAssertEqual(posix_spawn(&pid, exe, &actions, nil, &cargs, &env), 0)
            posix_spawn_file_actions_destroy(&actions)
            for p in cargs { free(p) }
            for p in env { free(p) }
            // Wait for its first commit of this round (slow CI: the binary takes a while
            // to start), then let it commit for a random while and kill it.
            let before = ((try? FileOps.readFile(dir + "/report")) ?? "").utf8.count
            for _ in 0..<1000 where ((try? FileOps.readFile(dir + "/report")) ?? "").utf8.count == before { usleep(5_000) }
            usleep(UInt32.random(in: 0...120_000, using: &g))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            XCTAssertEqual(status & 0x7f, SIGKILL, "the writer was killed, not finished")

            let s = try openStore(dir)
            XCTAssertEqual(try s.integrityCheck(), "ok", "round \(round)")
            let reported = (try? FileOps.readFile(dir + "/report")) ?? ""
            let snap = s.snapshot()
            let features = try snap.features(of: "dom0")
            for line in reported.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2 else { continue }   // a torn last line of the report itself
                let name = String(parts[1])
                if parts[0] == "create" {
                    XCTAssertTrue(snap.contains(name), "committed domain \(name) lost")
                    XCTAssertEqual(try snap.property("vcpus", of: name).value, "3")
                    XCTAssertEqual(try snap.tags(of: name), ["created-by-crash", "isolation-native"])
                } else {
                    XCTAssertNotNil(features[name], "committed feature \(name) lost")
                }
            }
            // Every domain is whole (a half transaction would lack its label or properties).
            for d in snap.allDomains() where d.name.hasPrefix("r") {
                XCTAssertEqual(try snap.property("label", of: d.name).value, "green")
                XCTAssertFalse(try snap.property("memory", of: d.name).isDefault)
            }
            totalReported = reported.split(separator: "\n").count
        }
        XCTAssertGreaterThan(totalReported, 20, "the writer committed changes between kills")
        print("crash-safety: 20 SIGKILLs, \(totalReported) committed changes reported, all present")
    }
}
