// SplitGPGConsentTests: the vault asks (odyssey.GpgConsent+SOURCE to
// @adminvm, which the loopback runs as the admin-side service) the first
// time a domain uses its keys, remembers the answer for autoaccept_seconds
// per source domain *uuid* (a domain re-created under the same name is asked
// again), and fails the call when the answer is no. Also: which
// vault ody-gpg calls, and a policy refusal of qubes.Gpg.
import Foundation
import XCTest

final class SplitGPGConsentTests: XCTestCase {
    override class func tearDown() {
        SplitGPG.stopAgent()
        super.tearDown()
    }

    let message = Array("consent test\n".utf8)

    func testFirstCallAsksAndTheNextWithinTheWindowDoesNot() throws {
        let s = try SplitGPG.Setup()
        let first = try s.gpg(["-b"], stdin: message)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(s.h.calls, ["work vault qubes.Gpg", "vault dom0 odyssey.GpgConsent+work"])
        let second = try s.gpg(["-b"], stdin: message)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(s.consentCalls(from: "work"), 1, "remembered: \(s.h.calls)")
        XCTAssertEqual(s.gpgRuns, 2)

        // Per source domain: "personal" is asked for separately, once.
        XCTAssertEqual(try s.gpg(["-b"], stdin: message, in: "personal").status, 0)
        XCTAssertEqual(try s.gpg(["-b"], stdin: message, in: "personal").status, 0)
        XCTAssertEqual(s.consentCalls(from: "personal"), 1, "\(s.h.calls)")
        XCTAssertEqual(s.consentCalls(from: "work"), 1)

        // The memory is a private directory with one file per domain.
        let dir = s.runtime + "/odyssey-split-gpg"
        let attrs = try FileManager.default.attributesOfItem(atPath: dir)
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o700)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), ["consent-work", "consent-personal"])
    }

    /// Finding 16 (issue 11): consent was keyed by name, so a domain removed
    /// and created again as "work" inherited the old one's consent.
    func testRecreatedDomainOfTheSameNameIsAskedAgain() throws {
        let s = try SplitGPG.Setup()
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        XCTAssertEqual(s.consentCalls(), 1, "remembered for the same domain: \(s.h.calls)")
        let file = s.runtime + "/odyssey-split-gpg/consent-work"
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), s.h.uuid("work"), "the record names the uuid that consented")

        s.h.recreate("work")
        let r = try s.gpg(["-b"], stdin: message)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.consentCalls(), 2, "a new domain named work must be asked: \(s.h.calls)")
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        XCTAssertEqual(s.consentCalls(), 2, "and then remembered for the new one")

        // Refused for the new one: nothing of the old consent lets it through.
        s.h.recreate("work")
        let no = try s.gpg(["-b"], stdin: message, env: ["ODY_LOOPBACK_DENY": "odyssey.GpgConsent"])
        XCTAssertEqual(no.status, 1, no.stderr)
        XCTAssertEqual(s.gpgRuns, 4, "gpg ran for the four allowed calls only")
    }

    /// Without the caller's uuid (a host that does not pass it, or a spelling
    /// that is not canonical) nothing is remembered: every call asks.
    func testWithoutTheCallersUUIDEveryCallAsks() throws {
        let s = try SplitGPG.Setup()
        for bad in ["", s.h.uuid("work").uppercased(), "../" + String(repeating: "a", count: 33)] {
            let bytes = SplitGPG.stream(["-b"], frames: [(0, message), (0, [])])
            var env = s.env
            env["QREXEC_REMOTE_DOMAIN_UUID"] = bad
            let r = try s.h.runService("qubes.Gpg", source: "work", in: "vault", stdin: bytes, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(SplitGPG.reply(r.stdout).exitStatus, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("the host did not pass the caller's uuid; consent is not remembered"), r.stderr)
        }
        XCTAssertEqual(s.consentCalls(), 3, "\(s.h.calls)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.runtime + "/odyssey-split-gpg/consent-work"))
    }

    func testConsentExpiresAfterTheWindow() throws {
        let s = try SplitGPG.Setup()
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        // Age the remembered consent past the default 300 s.
        let file = s.runtime + "/odyssey-split-gpg/consent-work"
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -301)], ofItemAtPath: file)
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        XCTAssertEqual(s.consentCalls(), 2, "\(s.h.calls)")
        // A time in the future (clock set back) is not trusted either.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 3600)], ofItemAtPath: file)
        XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0)
        XCTAssertEqual(s.consentCalls(), 3, "\(s.h.calls)")
    }

    func testAutoacceptZeroAsksEveryTime() throws {
        let s = try SplitGPG.Setup(config: ["autoaccept_seconds": "0"])
        for _ in 0..<2 { XCTAssertEqual(try s.gpg(["-b"], stdin: message).status, 0) }
        XCTAssertEqual(s.consentCalls(), 2)
    }

    func testRefusedConsentFailsTheCall() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["-b"], stdin: message, env: ["ODY_LOOPBACK_DENY": "odyssey.GpgConsent"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("the vault's user did not allow work to use its keys (odyssey.GpgConsent: refused)"), r.stderr)
        XCTAssertTrue(r.stdout.isEmpty)
        XCTAssertEqual(s.gpgRuns, 0, "gpg must not run without consent")
        // Nothing remembered: the next call asks again (and, allowed, works).
        let next = try s.gpg(["-b"], stdin: message)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(s.consentCalls(), 2)
    }

    func testUntrustworthyRuntimeDirectoryMeansAskingEveryTime() throws {
        let s = try SplitGPG.Setup()
        // Someone else's idea of the directory: world-writable. Not used.
        let dir = s.runtime + "/odyssey-split-gpg"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        chmod(dir, 0o777)
        for _ in 0..<2 {
            let r = try s.gpg(["-b"], stdin: message)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("is not a private directory of this user; consent is not remembered"), r.stderr)
        }
        XCTAssertEqual(s.consentCalls(), 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        // A symlink in its place is not followed.
        try FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createSymbolicLink(atPath: dir, withDestinationPath: s.h.root)
        let r = try s.gpg(["-b"], stdin: message)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.h.root + "/consent-work"))
    }

    /// A service started outside a session may inherit an XDG_RUNTIME_DIR
    /// that does not exist: the memory moves to /tmp/odyssey-split-gpg-UID
    /// rather than being lost (which would ask on every call).
    func testMissingXdgRuntimeDirFallsBackToTmp() throws {
        let s = try SplitGPG.Setup()
        let source = "fallback" + String(UUID().uuidString.prefix(8)).lowercased()
        let memory = "/tmp/odyssey-split-gpg-\(geteuid())/consent-\(source)"
        defer {
            try? FileManager.default.removeItem(atPath: memory)
            // The call's busy slot (max_concurrent_calls) fell back to /tmp too.
            try? FileManager.default.removeItem(atPath: "/tmp/odyssey-split-gpg-calls-\(geteuid())/busy-\(source).0")
            for dir in ["odyssey-split-gpg-calls", "odyssey-split-gpg"] {
                rmdir("/tmp/\(dir)-\(geteuid())")   // only if empty: another run may be using it
            }
        }
        let env = ["XDG_RUNTIME_DIR": s.runtime + "/does-not-exist"]
        for _ in 0..<2 {
            let r = try s.gpg(["-b"], stdin: message, in: source, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(r.stderr.contains("consent is not remembered"), r.stderr)
        }
        XCTAssertEqual(s.consentCalls(from: source), 1, "\(s.h.calls)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: memory))
    }

    func testAdminSideConsentServiceChecksItsArgument() throws {
        let s = try SplitGPG.Setup()
        let ok = try s.h.runService("odyssey.GpgConsent", argument: "work", source: "vault", in: "dom0", side: .admin)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.isEmpty)
        for bad in ["", "../etc", "-x", "a b", String(repeating: "a", count: 32)] {
            let r = try s.h.runService("odyssey.GpgConsent", argument: bad, source: "vault", in: "dom0", side: .admin)
            XCTAssertEqual(r.status, 2, "argument \(bad)")
            XCTAssertTrue(r.stderr.contains("the argument must be a domain name"), r.stderr)
        }
    }

    func testPolicyRefusalOfQubesGpgIsReported() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["-b"], stdin: message, env: ["ODY_LOOPBACK_DENY": "qubes.Gpg"])
        XCTAssertEqual(r.status, 126)
        XCTAssertTrue(r.stderr.contains("ody-gpg: the call to qubes.Gpg in @default was refused by policy"), r.stderr)
        XCTAssertEqual(s.gpgRuns, 0)
    }

    func testVaultComesFromTheEnvironmentThenConfigThenDefault() throws {
        let s = try SplitGPG.Setup(config: ["vault": "keys"])
        XCTAssertEqual(try s.gpg(["-k"]).status, 0)
        XCTAssertEqual(s.h.calls.first, "work keys qubes.Gpg")
        XCTAssertEqual(try s.gpg(["-k"], env: ["ODYSSEY_GPG_DOMAIN": "safe"]).status, 0)
        XCTAssertTrue(s.h.calls.contains("work safe qubes.Gpg"), "\(s.h.calls)")
        let bad = try s.gpg(["-k"], env: ["ODYSSEY_GPG_DOMAIN": "../vault"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("is not a domain name"), bad.stderr)
    }
}
