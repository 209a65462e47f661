// SplitGPGTests: ody-gpg in "work" using the keys of "vault" with the real
// gpg, through the real runner and the loopback: detached, clear and
// armored signatures (checked by gpg with the vault's keyring and by
// ody-gpg --verify), encryption to the key and decryption, key listing,
// and gpg's status descriptor reaching the caller.
import Foundation
import XCTest

final class SplitGPGTests: XCTestCase {
    override class func tearDown() {
        SplitGPG.stopAgent()
        super.tearDown()
    }

    /// Random bytes, enough for several 64 KiB frames.
    func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    func testDetachedSignatureVerifiesInTheVaultAndThroughOdyGpg() throws {
        let s = try SplitGPG.Setup()
        let data = randomBytes(300_000)
        let dataPath = s.file("data.bin", data)
        let r = try s.gpg(["--detach-sign"], stdinPath: dataPath)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.first.map { $0 & 0x80 }, 0x80, "a binary OpenPGP packet")
        let sigPath = s.file("data.sig", r.stdout)

        // gpg with the vault's keyring agrees: a good signature by the key.
        let check = try SplitGPG.run(SplitGPG.gpg, ["--batch", "--verify", sigPath, dataPath], gnupg: s.gnupg)
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("Good signature from \"\(SplitGPG.uid)\""), check.output)

        // ody-gpg --verify SIG -: the client opens the signature itself.
        let v = try s.gpg(["--verify", "data.sig", "-"], stdinPath: dataPath)
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stderr.contains("Good signature from \"\(SplitGPG.uid)\""), v.stderr)

        // Changed data: gpg says BAD and ody-gpg passes its status on.
        var changed = data
        changed[1000] ^= 1
        let bad = try s.gpg(["--verify", "data.sig", "-"], stdinPath: s.file("changed.bin", changed))
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("BAD signature"), bad.stderr)
    }

    func testClearsign() throws {
        let s = try SplitGPG.Setup()
        let text = "pay 10 EUR to Alice\nsecond line\n"
        let r = try s.gpg(["--clearsign"], stdin: Array(text.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdoutText.hasPrefix("-----BEGIN PGP SIGNED MESSAGE-----\n"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("pay 10 EUR to Alice\nsecond line\n"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("-----BEGIN PGP SIGNATURE-----"), r.stdoutText)

        let v = try s.gpg(["--verify"], stdin: r.stdout)
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stderr.contains("Good signature"), v.stderr)
        let forged = try s.gpg(["--verify"], stdin: Array(r.stdoutText.replacingOccurrences(of: "10 EUR", with: "99 EUR").utf8))
        XCTAssertNotEqual(forged.status, 0)
        XCTAssertTrue(forged.stderr.contains("BAD signature"), forged.stderr)
    }

    func testArmoredDetachedSignatureFromCombinedShortOptions() throws {
        let s = try SplitGPG.Setup()
        let dataPath = s.file("notes.txt", Array("some notes\n".utf8))
        let r = try s.gpg(["-bas"], stdinPath: dataPath)   // -b -a -s in one word
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdoutText.hasPrefix("-----BEGIN PGP SIGNATURE-----"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.hasSuffix("-----END PGP SIGNATURE-----\n"), r.stdoutText)
        let sigPath = s.file("notes.txt.asc", r.stdout)
        let check = try SplitGPG.run(SplitGPG.gpg, ["--batch", "--verify", sigPath, dataPath], gnupg: s.gnupg)
        XCTAssertEqual(check.status, 0, check.output)
        // --armor and "-o -" spelled out give the same kind of output.
        let long = try s.gpg(["--armor", "--detach-sign", "-o", "-"], stdinPath: dataPath)
        XCTAssertEqual(long.status, 0, long.stderr)
        XCTAssertTrue(long.stdoutText.hasPrefix("-----BEGIN PGP SIGNATURE-----"), long.stdoutText)
    }

    func testEncryptToTheKeyAndDecryptInTheVault() throws {
        let s = try SplitGPG.Setup()
        let secret = randomBytes(1_000_000)
        let enc = try s.gpg(["--encrypt", "-r", SplitGPG.email], stdinPath: s.file("secret.bin", secret))
        XCTAssertEqual(enc.status, 0, enc.stderr)
        XCTAssertGreaterThan(enc.stdout.count, secret.count / 2)
        XCTAssertNotEqual(Array(enc.stdout.prefix(64)), Array(secret.prefix(64)))

        let dec = try s.gpg(["--decrypt"], stdinPath: s.file("secret.gpg", enc.stdout))
        XCTAssertEqual(dec.status, 0, dec.stderr)
        XCTAssertEqual(dec.stdout.count, secret.count)
        XCTAssertTrue(dec.stdout == secret, "the decrypted bytes differ from the original")

        // Armored, with the value glued to the short option (-rKEY).
        let armored = try s.gpg(["-ea", "-r\(SplitGPG.email)"], stdin: Array("short secret\n".utf8))
        XCTAssertEqual(armored.status, 0, armored.stderr)
        XCTAssertTrue(armored.stdoutText.hasPrefix("-----BEGIN PGP MESSAGE-----"), armored.stdoutText)
        let back = try s.gpg(["-d"], stdin: armored.stdout)
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertEqual(back.stdoutText, "short secret\n")
    }

    func testListKeysWithColons() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["--list-keys", "--with-colons"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdoutText.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("pub:") }, r.stdoutText)
        XCTAssertTrue(lines.contains { $0.hasPrefix("uid:") && $0.contains(SplitGPG.uid) }, r.stdoutText)
        XCTAssertTrue(lines.contains { $0.hasPrefix("sub:") && $0.contains(":e:") }, r.stdoutText)   // the cv25519 subkey
        // Secret keys and a user ID argument (not a file: allowed for listings).
        let sec = try s.gpg(["-K", "--with-colons", SplitGPG.email])
        XCTAssertEqual(sec.status, 0, sec.stderr)
        XCTAssertTrue(sec.stdoutText.split(separator: "\n").contains { $0.hasPrefix("sec:") }, sec.stdoutText)
    }

    func testStatusFdOutputReachesTheClient() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["--status-fd", "2", "--detach-sign"], stdin: Array("status please\n".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("[GNUPG:] SIG_CREATED D "), r.stderr)
        XCTAssertFalse(r.stdout.isEmpty)
        // Status lines on stdout, with the --status-fd=1 spelling.
        let signed = try s.gpg(["--clearsign"], stdin: Array("x\n".utf8))
        XCTAssertEqual(signed.status, 0, signed.stderr)
        let verify = try s.gpg(["--status-fd=1", "--verify", "-"], stdin: signed.stdout)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdoutText.contains("[GNUPG:] GOODSIG "), verify.stdoutText)
        XCTAssertTrue(verify.stdoutText.contains("[GNUPG:] VALIDSIG "), verify.stdoutText)
    }

    /// What gpg in the vault is given: the fixed options first, every option
    /// by its full long name with its value joined ("--comment=--import" is
    /// a comment, not an option), then "--" before the arguments.
    func testVaultRunsGpgWithFixedOptionsAndRewrittenArguments() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["-bas", "-u", SplitGPG.email, "--comment", "--import", "-o-", "-"], stdin: Array("x\n".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdoutText.contains("Comment: --import"), r.stdoutText)
        let ran = try String(contentsOfFile: s.marker, encoding: .utf8)
        XCTAssertEqual(ran, "--no-tty --batch --disable-dirmngr --photo-viewer=/bin/true --exit-on-status-write-error "
                       + "--detach-sign --armor --sign --local-user=\(SplitGPG.email) --comment=--import --output=- -- -\n")
    }

    func testGpgExitStatusAndMessagesPassThrough() throws {
        let s = try SplitGPG.Setup()
        let r = try s.gpg(["--encrypt", "-r", "nobody@example.org"], stdin: Array("x".utf8))
        XCTAssertEqual(r.status, 2, r.stderr)   // gpg's own status
        XCTAssertTrue(r.stderr.contains("nobody@example.org"), r.stderr)
        XCTAssertTrue(r.stdout.isEmpty)
    }
}
