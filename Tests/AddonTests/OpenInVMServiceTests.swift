// OpenInVMServiceTests: qubes.OpenInVM fed raw bytes, as a hostile caller
// could send them: the name checks, view-only, what comes back, cleanup.
import Foundation
import XCTest

final class OpenInVMServiceTests: XCTestCase {
    private var h: AddonHarness!
    private var s: OpenInVMScratch!

    override func setUpWithError() throws {
        h = try AddonHarness(addons: ["open-in-vm"])
        s = try OpenInVMScratch(h)
    }

    private func useViewer(_ then: String = "") throws {
        try h.setConfig("open-in-vm", ["viewer": try s.viewer(then)])
    }

    private func open(_ request: [UInt8]) throws -> AddonHarness.Result {
        try h.runService("qubes.OpenInVM", source: "work", in: "disp1", stdin: request)
    }

    func testChangedFileIsStreamedBackAndOnlyThen() throws {
        try useViewer(#"printf ' world' >> "$1""#)
        let r = try open(OpenInVMWire.request("notes.txt", "hello"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutText, "hello world")
        XCTAssertEqual(r.stderr, "")

        try useViewer()
        let same = try open(OpenInVMWire.request("notes.txt", "hello"))
        XCTAssertEqual(same.status, 0, same.stderr)
        XCTAssertEqual(same.stdout, [], "nothing back when unchanged")
        XCTAssertEqual(s.marker("seen-data"), "hello")
    }

    /// A caller cannot fill the target's file system: past what
    /// min_free_percent keeps free, the rest is refused, the viewer never
    /// runs and nothing is left behind.
    func testFileThatWouldFillTheTargetIsRefused() throws {
        try useViewer()
        let tmp = h.root + "/disp1-tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        try h.setConfig("open-in-vm", ["viewer": try s.viewer(), "min_free_percent": "100"])
        let r = try h.runService("qubes.OpenInVM", source: "work", in: "disp1",
                                 stdin: OpenInVMWire.request("big.bin", "data"), env: ["TMPDIR": tmp])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("refused the rest of big.bin from work") && r.stderr.contains("min_free_percent"),
                      r.stderr)
        XCTAssertNil(s.marker("seen-path"), "the viewer must not run")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), [], "nothing left behind")

        try h.setConfig("open-in-vm", ["viewer": try s.viewer(), "min_free_percent": "0"])
        let ok = try h.runService("qubes.OpenInVM", source: "work", in: "disp1",
                                  stdin: OpenInVMWire.request("big.bin", "data"), env: ["TMPDIR": tmp])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(s.marker("seen-data"), "data")
    }

    func testViewOnlySendsNothingEvenWhenTheViewerWrites() throws {
        try useViewer(#"chmod u+w "$1"; echo tampered >> "$1"; echo extra > "$(dirname "$1")/other" 2>/dev/null"#)
        let r = try open(OpenInVMWire.request("view-only-secret.pdf", "%PDF"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, [])
        XCTAssertEqual(s.marker("seen-mode"), "400\n")
        let seen = try XCTUnwrap(s.marker("seen-path"))
        XCTAssertEqual((seen as NSString).lastPathComponent, "secret.pdf")
        XCTAssertFalse(FileManager.default.fileExists(atPath: (seen as NSString).deletingLastPathComponent),
                       "the read-only directory is removed too")
    }

    func testNamesThatAreNotOneBaseNameAreRefused() throws {
        try useViewer()
        let cases: [([UInt8], String)] = [
            (Array("../escape.txt".utf8), "contains '/'"),
            (Array("a/b".utf8), "contains '/'"),
            (Array("/etc/passwd".utf8), "contains '/'"),
            (Array("view-only-../x".utf8), "contains '/'"),
            ([], "empty"),
            (Array("view-only-".utf8), "empty"),
            (Array(".".utf8), #"is "." or "..""#),
            (Array("..".utf8), #"is "." or "..""#),
        ]
        for (name, reason) in cases {
            let r = try open(OpenInVMWire.request(name: name, data: Array("data".utf8)))
            let shown = String(decoding: name, as: UTF8.self)
            XCTAssertEqual(r.status, 1, "name \(shown)")
            XCTAssertTrue(r.stderr.hasPrefix("qubes.OpenInVM: refused the file from work: "), r.stderr)
            XCTAssertTrue(r.stderr.contains(reason), "name \(shown): \(r.stderr)")
            XCTAssertEqual(r.stdout, [])
        }
        XCTAssertFalse(s.exists("seen-path"), "the viewer never ran for a refused name")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.home("disp1") + "/escape.txt"))
    }

    func testNameWithoutTerminatorOrShortBlockIsRefused() throws {
        try useViewer()
        let full = try open([UInt8](repeating: UInt8(ascii: "a"), count: 256) + Array("data".utf8))
        XCTAssertEqual(full.status, 1)
        XCTAssertTrue(full.stderr.contains("no NUL"), full.stderr)
        let short = try open(Array("short".utf8))
        XCTAssertEqual(short.status, 1)
        XCTAssertTrue(short.stderr.contains("sent no file name"), short.stderr)
        XCTAssertFalse(s.exists("seen-path"))
    }

    func testUnusualBytesBecomeUnderscores() throws {
        try useViewer()
        var name: [UInt8] = Array("a b\t$(c)|d;".utf8) + [0x1b, 0xff, 0xc3, 0xa9] + Array("e*?.txt".utf8)
        var r = try open(OpenInVMWire.request(name: name, data: [1, 2, 3]))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try XCTUnwrap(s.marker("seen-path")) as NSString).lastPathComponent, "a_b___c__d_____e__.txt")

        // The allowed set goes through unchanged, a leading '-' included (the
        // viewer gets an absolute path, so it cannot pose as an option).
        name = Array("-Az09._+@-".utf8)
        r = try open(OpenInVMWire.request(name: name, data: [1]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let seen = try XCTUnwrap(s.marker("seen-path"))
        XCTAssertEqual((seen as NSString).lastPathComponent, "-Az09._+@-")
        XCTAssertTrue(seen.hasPrefix("/"), seen)
    }

    func testBytesAfterTheTerminatorAreIgnored() throws {
        try useViewer()
        var block = [UInt8](repeating: 0x41, count: 256)
        block.replaceSubrange(0..<6, with: Array("ok.txt".utf8))
        block[6] = 0
        let r = try open(block + Array("payload".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try XCTUnwrap(s.marker("seen-path")) as NSString).lastPathComponent, "ok.txt")
        XCTAssertEqual(s.marker("seen-data"), "payload")
    }

    func testSymlinkOrFifoInPlaceOfTheFileIsNotFollowed() throws {
        let secret = s.dir + "/secret"
        try OpenInVMFile.write(secret, "do not send")
        try useViewer("rm -f \"$1\"; ln -s \(secret) \"$1\"")
        let r = try open(OpenInVMWire.request("doc.txt", "original"))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdout, [], "the link's target is never read")
        XCTAssertTrue(r.stderr.contains("no longer a regular file"), r.stderr)
        XCTAssertEqual(OpenInVMFile.text(secret), "do not send", "cleanup did not follow the link")

        try useViewer(#"rm -f "$1"; mkfifo "$1""#)
        let fifo = try open(OpenInVMWire.request("doc.txt", "original"))   // must not hang
        XCTAssertEqual(fifo.status, 1)
        XCTAssertTrue(fifo.stderr.contains("no longer a regular file"), fifo.stderr)
    }

    func testViewerLeftoversAreRemovedWithoutFollowingLinks() throws {
        let outside = s.dir + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try OpenInVMFile.write(outside + "/keep", "keep")
        try useViewer("""
        d=$(dirname "$1"); mkdir -p "$d/sub/deeper"; echo x > "$d/sub/deeper/f"; chmod 500 "$d/sub/deeper" "$d/sub"
        ln -s \(outside) "$d/link"; echo backup > "$1~"
        """)
        let r = try open(OpenInVMWire.request("doc.txt", "data"))
        XCTAssertEqual(r.status, 0, r.stderr)
        let dir = (try XCTUnwrap(s.marker("seen-path")) as NSString).deletingLastPathComponent
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir))
        XCTAssertEqual(OpenInVMFile.text(outside + "/keep"), "keep")
    }

    func testViewerRemovingTheFileSendsNothing() throws {
        try useViewer(#"rm -f "$1""#)
        let r = try open(OpenInVMWire.request("doc.txt", "data"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, [])
        XCTAssertTrue(r.stderr.contains("removed doc.txt"), r.stderr)
    }

    func testViewerIsFoundOnPathAndGetsNoChannel() throws {
        // A bare name is looked up in PATH; the viewer's stdout must not end
        // up in the data going back, nor can it read the request.
        let bin = s.dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let v = try s.viewer(#"echo "noise on stdout"; echo "noise on stderr" >&2; cat > \#(s.dir)/stdin-seen; printf '!' >> "$1""#)
        try FileManager.default.moveItem(atPath: v, toPath: bin + "/my-viewer")
        try h.setConfig("open-in-vm", ["viewer": "my-viewer"])
        let r = try h.runService("qubes.OpenInVM", source: "work", in: "disp1", stdin: OpenInVMWire.request("a.txt", "x"),
                                 env: ["PATH": bin + ":/usr/bin:/bin"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutText, "x!")
        XCTAssertFalse(r.stderr.contains("noise"), r.stderr)
        XCTAssertEqual(s.marker("stdin-seen"), "")

        try h.setConfig("open-in-vm", ["viewer": "bin/my-viewer"])
        let rel = try open(OpenInVMWire.request("a.txt", "x"))
        XCTAssertEqual(rel.status, 1)
        XCTAssertTrue(rel.stderr.contains("relative path"), rel.stderr)
    }
}
