// OpenInVMTests: ody-open-in-vm / ody-open-in-dvm end to end through the
// real runner: the client in "work", qubes.OpenInVM looped back "in" the
// target, a viewer script standing in for the user's program.
import Foundation
import XCTest

final class OpenInVMTests: XCTestCase {
    private var h: AddonHarness!
    private var s: OpenInVMScratch!
    private var doc: String!

    override func setUpWithError() throws {
        h = try AddonHarness(addons: ["open-in-vm"])
        h.defaultTarget = "disp1"
        s = try OpenInVMScratch(h)
        doc = h.home("work") + "/report.txt"
        try OpenInVMFile.write(doc, "hello\n", mode: 0o640)
    }

    private func useViewer(_ then: String = "") throws {
        try h.setConfig("open-in-vm", ["viewer": try s.viewer(then)])
    }

    private func assertNoLeftovers(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(OpenInVMFile.entries(in: h.home("work"), prefix: ".ody-open-"), [],
                       "the client left a temporary file beside the original", file: file, line: line)
        if let seen = s.marker("seen-path") {
            let dir = (seen as NSString).deletingLastPathComponent
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "the service left \(dir)", file: file, line: line)
        }
    }

    func testEditedFileComesBackAndReplacesTheOriginal() throws {
        try useViewer(#"echo "edited in the disposable" >> "$1""#)
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\nedited in the disposable\n")
        let after = try XCTUnwrap(OpenInVMFile.identity(doc))
        XCTAssertNotEqual(after.inode, before.inode, "replaced by rename, not rewritten in place")
        XCTAssertEqual(after.mode, 0o640, "the original's mode is kept")
        XCTAssertTrue(r.stdoutText.contains("updated"), r.stdoutText)
        // It ran "in" the disposable: the @dispvm call went to the default target.
        XCTAssertEqual(h.calls, ["work disp1 qubes.OpenInVM"])
        XCTAssertEqual(s.marker("seen-home"), h.home("disp1"))
        XCTAssertEqual(s.marker("seen-data"), "hello\n")
        XCTAssertEqual(s.marker("seen-mode"), "600\n", "a private, writable copy")
        let seen = try XCTUnwrap(s.marker("seen-path"))
        XCTAssertTrue(seen.hasSuffix("/report.txt") && seen.contains("/ody-open-"), seen)
        assertNoLeftovers()
    }

    func testOpenInNamedDomainGoesThere() throws {
        try useViewer(#"printf 'X' >> "$1""#)
        let r = try h.runCommand(["ody-open-in-vm", "personal", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(h.calls, ["work personal qubes.OpenInVM"])
        XCTAssertEqual(s.marker("seen-home"), h.home("personal"))
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\nX")
    }

    func testRelativePathAndLargeBinaryFileRoundTrip() throws {
        // 3 MiB of every byte value, more than one 64 KiB chunk everywhere;
        // the viewer flips the last byte.
        var data = [UInt8](repeating: 0, count: 3 << 20)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        let big = h.home("work") + "/blob.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: big, contents: Data(data)))
        try useViewer(#"printf '\377' | dd of="$1" bs=1 seek=$(( $(stat -c %s "$1") - 1 )) conv=notrunc status=none"#)
        let r = try h.runCommand(["ody-open-in-dvm", "blob.bin"], in: "work", cwd: h.home("work"))
        XCTAssertEqual(r.status, 0, r.stderr)
        var expected = data
        expected[expected.count - 1] = 0xFF
        let got = try Data(contentsOf: URL(fileURLWithPath: big))
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == Data(expected), "the edited bytes came back exactly")
        assertNoLeftovers()
    }

    func testSymlinkedFileIsEditedWhereItLives() throws {
        // FILE is resolved first: the link stays a link, its target is replaced.
        try useViewer(#"printf '+' >> "$1""#)
        let link = h.home("work") + "/link.txt"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: doc)
        let r = try h.runCommand(["ody-open-in-dvm", link], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), doc)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\n+")
        XCTAssertEqual((try XCTUnwrap(s.marker("seen-path")) as NSString).lastPathComponent, "report.txt")
        assertNoLeftovers()
    }

    func testUnmodifiedFileIsLeftUntouched() throws {
        try useViewer()   // only looks
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-vm", "personal", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before, "same inode, same mtime, same mode")
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\n")
        XCTAssertEqual(s.marker("seen-data"), "hello\n", "the viewer did run")
        XCTAssertFalse(r.stdoutText.contains("updated"), r.stdoutText)
        assertNoLeftovers()
    }

    func testSavedWithoutChangesIsNotReplaced() throws {
        // An editor that saves the same bytes (new mtime, even a new inode):
        // content decides, not timestamps.
        try useViewer(#"cp "$1" "$1.new" && mv -f "$1.new" "$1""#)
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    func testViewOnlyCopyIsReadOnlyAndNothingComesBack() throws {
        // As root the viewer can still write: the copy is read-only by mode,
        // and what it writes must not come back.
        try useViewer(#"chmod u+w "$1" 2>/dev/null; echo "tampered" >> "$1""#)
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", "--view-only", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.marker("seen-mode"), "400\n", "the viewer got a read-only file")
        XCTAssertTrue(s.marker("seen-path")?.hasSuffix("/report.txt") ?? false,
                      "the view-only prefix is not part of the name the viewer sees: \(s.marker("seen-path") ?? "")")
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\n")
        assertNoLeftovers()
    }

    func testViewOnlyWorksInReadOnlyDirectory() throws {
        try useViewer()
        let dir = h.home("work") + "/ro"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let f = dir + "/a.txt"
        try OpenInVMFile.write(f, "x")
        chmod(dir, 0o555)
        defer { chmod(dir, 0o755) }
        let r = try h.runCommand(["ody-open-in-dvm", "--view-only", f], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.marker("seen-data"), "x")
    }

    func testReadOnlyDirectoryIsRefusedBeforeTheCallUnlessViewOnly() throws {
        try useViewer()
        let dir = h.home("work") + "/ro"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let f = dir + "/a.txt"
        try OpenInVMFile.write(f, "x")
        chmod(dir, 0o555)
        defer { chmod(dir, 0o755) }
        // Root writes anywhere: drop to nobody for the command, as a user would be.
        guard geteuid() == 0 else { throw XCTSkip("needs root to run the command as another user") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("no /usr/bin/setpriv") }
        let r = try h.run(["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           h.view + "/bin/ody-open-in-dvm", f],
                          env: ["PATH": "/usr/bin:/bin", "ODYSSEY_ADDON_CALL": h.loopback], stdin: [], stdinPath: nil, cwd: "/")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot write in \(dir)") && r.stderr.contains("--view-only"), r.stderr)
        XCTAssertEqual(h.calls, [], "refused before any call")
    }

    func testNothingIsLeftBesideTheFileWhileItIsOpen() throws {
        // The temporary file for the edited copy appears only when data comes
        // back, so a session interrupted while open leaves nothing here.
        try useViewer("ls -a \(h.home("work")) > \(s.dir)/listing; echo more >> \"$1\"")
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        let listing = try XCTUnwrap(s.marker("listing"))
        XCTAssertFalse(listing.contains(".ody-open-"), listing)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\nmore\n")
    }

    func testUnusualCharactersInTheNameAreSanitised() throws {
        try useViewer(#"printf 'more' >> "$1""#)
        let odd = h.home("work") + "/we ird;$(x)`y`é.txt"
        try OpenInVMFile.write(odd, "odd\n", mode: 0o600)
        let r = try h.runCommand(["ody-open-in-dvm", odd], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        let seen = try XCTUnwrap(s.marker("seen-path"))
        XCTAssertEqual((seen as NSString).lastPathComponent, "we_ird___x__y___.txt", "é is two bytes, two '_'")
        XCTAssertEqual(OpenInVMFile.text(odd), "odd\nmore", "the edit still lands on the original name")
        XCTAssertEqual(OpenInVMFile.identity(odd)?.mode, 0o600)
    }

    func testOwnNameStartingWithViewOnlyStaysEditable() throws {
        try useViewer(#"printf '!' >> "$1""#)
        let f = h.home("work") + "/view-only-notes.txt"
        try OpenInVMFile.write(f, "n")
        let r = try h.runCommand(["ody-open-in-dvm", f], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.marker("seen-mode"), "600\n")
        XCTAssertEqual((try XCTUnwrap(s.marker("seen-path")) as NSString).lastPathComponent, "view_only-notes.txt")
        XCTAssertEqual(OpenInVMFile.text(f), "n!")
    }

    func testMissingViewerIsAClearError() throws {
        try h.setConfig("open-in-vm", ["viewer": "no-such-viewer-anywhere"])
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(#"viewer "no-such-viewer-anywhere" not found"#), r.stderr)
        XCTAssertTrue(r.stderr.contains("report.txt is unchanged"), r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()

        try h.setConfig("open-in-vm", ["viewer": "/nonexistent/viewer"])
        let r2 = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(r2.stderr.contains(#"viewer "/nonexistent/viewer" not found"#), r2.stderr)
    }

    func testFailingViewerSendsNothingBack() throws {
        try useViewer(#"echo half-done >> "$1"; exit 3"#)
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("exited with status 3"), r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    func testEmptiedFileCannotComeBackAndSaysSo() throws {
        try useViewer(#": > "$1""#)
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("emptied"), r.stderr)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\n")
    }

    func testLocalChangeWhileOpenIsNotOverwritten() throws {
        // The viewer runs on this machine too, so it can play the user who
        // edits the original here while the copy is open there.
        try useViewer("echo 'edited here' >> \(doc!); echo 'edited there' >> \"$1\"")
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("changed here while it was open"), r.stderr)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\nedited here\n")
        let kept = OpenInVMFile.entries(in: h.home("work"), prefix: ".ody-open-")
        XCTAssertEqual(kept.count, 1)
        XCTAssertEqual(kept.first.flatMap { OpenInVMFile.text(h.home("work") + "/" + $0) }, "hello\nedited there\n")
    }

    func testRefusedByPolicy() throws {
        try useViewer(#"echo x >> "$1""#)
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-vm", "vault", doc], in: "work", env: ["ODY_LOOPBACK_DENY": "qubes.OpenInVM"])
        XCTAssertEqual(r.status, 126)
        XCTAssertTrue(r.stderr.contains("refused by policy"), r.stderr)
        XCTAssertFalse(s.exists("seen-path"), "the viewer never ran")
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    /// Puts a script in place of qubes.OpenInVM in the view: a service of
    /// another make (or a hostile one), to check what the client accepts.
    private func fakeService(_ body: String) throws {
        let path = h.view + "/rpc/qubes.OpenInVM"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: try s.script("fake-service", body), toPath: path)
    }

    /// Reads the name block byte by byte (a buffered read could take data too).
    private let skipNameBlock = "dd bs=1 count=256 of=/dev/null status=none"

    func testIdenticalDataSentBackDoesNotReplace() throws {
        // A service that sends the file back whenever it was saved (as Qubes
        // does on a changed mtime): the client compares content itself.
        try fakeService("\(skipNameBlock); cat")
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    func testDataFromAFailedServiceIsDiscarded() throws {
        try fakeService("\(skipNameBlock); cat > /dev/null; printf 'partial'; exit 5")
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 5, "the service's status")
        XCTAssertTrue(r.stderr.contains("failed (status 5)") && r.stderr.contains("report.txt is unchanged"), r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    func testDataSentBackForViewOnlyIsIgnored() throws {
        try fakeService("\(skipNameBlock); cat > /dev/null; printf 'sneaky'")
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", "--view-only", doc], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("ignored 6 bytes"), r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        assertNoLeftovers()
    }

    /// Finding 16 (issue 11): nothing bounded what a target sent back. Past
    /// the larger of return_max_bytes and return_max_factor x the original,
    /// the client stops reading, keeps nothing and leaves FILE untouched.
    func testTargetSendingBackTooMuchIsStopped() throws {
        try h.setConfig("open-in-vm", ["return_max_bytes": "1000", "return_max_factor": "4"])
        try fakeService("\(skipNameBlock); cat > /dev/null; head -c 300000 /dev/zero | tr '\\0' x")
        let before = try XCTUnwrap(OpenInVMFile.identity(doc))
        let r = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("sent back more than 1000 bytes") && r.stderr.contains("report.txt is unchanged"),
                      r.stderr)
        XCTAssertEqual(OpenInVMFile.identity(doc), before)
        XCTAssertEqual(OpenInVMFile.text(doc), "hello\n")
        assertNoLeftovers()

        // The bound scales with the original: 4 x 300 bytes is over 1000.
        try OpenInVMFile.write(doc, String(repeating: "o", count: 300))
        try fakeService("\(skipNameBlock); cat > /dev/null; head -c 1200 /dev/zero | tr '\\0' y")
        let fits = try h.runCommand(["ody-open-in-dvm", doc], in: "work")
        XCTAssertEqual(fits.status, 0, fits.stderr)
        XCTAssertEqual(OpenInVMFile.text(doc), String(repeating: "y", count: 1200))
        try OpenInVMFile.write(doc, String(repeating: "o", count: 300))
        try fakeService("\(skipNameBlock); cat > /dev/null; head -c 1201 /dev/zero | tr '\\0' z")
        XCTAssertEqual(try h.runCommand(["ody-open-in-dvm", doc], in: "work").status, 1)
        XCTAssertEqual(OpenInVMFile.text(doc), String(repeating: "o", count: 300))
        assertNoLeftovers()
    }

    /// A target that sends far more (finite, so the old code could not fill
    /// the disk), also for a view-only copy where nothing is wanted back: the
    /// client stops at the bound, nothing is kept.
    func testFloodIsCutOffAtTheBound() throws {
        try h.setConfig("open-in-vm", ["return_max_bytes": "65536", "return_max_factor": "0"])
        try fakeService("\(skipNameBlock); cat > /dev/null; head -c 50000000 /dev/zero")
        for args in [[doc!], ["--view-only", doc!]] {
            let r = try h.runCommand(["ody-open-in-dvm"] + args, in: "work")
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("sent back more than 65536 bytes"), r.stderr)
            XCTAssertEqual(OpenInVMFile.text(doc), "hello\n")
        }
        assertNoLeftovers()
    }

    func testServiceExitingEarlyDoesNotHangTheClient() throws {
        // A large file and a service that reads nothing: the client's writes
        // fail, and it still reports the service's status.
        let big = h.home("work") + "/big.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: big, contents: Data(count: 8 << 20)))
        try fakeService("echo 'no thanks' >&2; exit 7")
        let r = try h.runCommand(["ody-open-in-dvm", big], in: "work")
        XCTAssertEqual(r.status, 7)
        XCTAssertTrue(r.stderr.contains("no thanks"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: big)).count, 8 << 20)
    }

    func testHelpAndUsageErrors() throws {
        let help = try h.runCommand(["ody-open-in-vm", "--help"], in: "work")
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdoutText.contains("usage: ody-open-in-vm [--view-only] TARGET FILE"), help.stdoutText)
        XCTAssertTrue(help.stdoutText.contains("--view-only"))
        XCTAssertTrue(help.stdoutText.contains("Exit status"))
        let dvmHelp = try h.runCommand(["ody-open-in-dvm", "-h"], in: "work")
        XCTAssertEqual(dvmHelp.status, 0)
        XCTAssertTrue(dvmHelp.stdoutText.contains("ody-open-in-dvm [--view-only] FILE"))

        for (argv, message) in [(["ody-open-in-vm", doc!], "missing arguments"),
                                (["ody-open-in-dvm", doc!, doc!], "too many arguments"),
                                (["ody-open-in-dvm", "--bogus", doc!], "unknown option --bogus"),
                                (["ody-open-in-vm", "bad name", doc!], "TARGET is not a domain name")] {
            let r = try h.runCommand(argv, in: "work")
            XCTAssertEqual(r.status, 2, "\(argv)")
            XCTAssertTrue(r.stderr.contains(message) && r.stderr.contains("--help"), r.stderr)
        }
        XCTAssertEqual(h.calls, [], "no call for a usage error")

        let missing = try h.runCommand(["ody-open-in-dvm", "/nonexistent/file.txt"], in: "work")
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/file.txt: No such file or directory"), missing.stderr)
        let dir = try h.runCommand(["ody-open-in-dvm", h.home("work")], in: "work")
        XCTAssertEqual(dir.status, 1)
        XCTAssertTrue(dir.stderr.contains("is not a regular file"), dir.stderr)
    }
}
