// OpenInVMURLTests: qubes.OpenURL accepts http, https and ftp URLs only,
// whole and printable; the handler's marker file says whether it ran.
import Foundation
import XCTest

final class OpenInVMURLTests: XCTestCase {
    private var h: AddonHarness!
    private var s: OpenInVMScratch!
    private var marker: String { s.dir + "/handled" }

    override func setUpWithError() throws {
        h = try AddonHarness(addons: ["open-in-vm"])
        s = try OpenInVMScratch(h)
        // One line per run: the argument count, then each argument.
        let handler = try s.script("url-handler", #"{ echo "$#"; for a in "$@"; do printf '%s\n' "$a"; done; } >> \#(s.dir)/handled"#)
        try h.setConfig("open-in-vm", ["url_handler": handler])
    }

    private func openURL(_ bytes: [UInt8]) throws -> AddonHarness.Result {
        try? FileManager.default.removeItem(atPath: marker)
        return try h.runService("qubes.OpenURL", source: "work", in: "disp1", stdin: bytes)
    }

    private func openURL(_ text: String) throws -> AddonHarness.Result { try openURL(Array(text.utf8)) }

    func testHttpHttpsAndFtpAreOpenedWithTheURLAsTheOnlyArgument() throws {
        for url in ["http://example.com/", "https://example.org/a/b?c=d&e=f#g", "ftp://ftp.example.net/pub/x.tar.gz",
                    "HTTPS://EXAMPLE.COM/UPPER", "Http://mixed.example/"] {
            let r = try openURL(url + "\n")
            XCTAssertEqual(r.status, 0, "\(url): \(r.stderr)")
            XCTAssertEqual(OpenInVMFile.text(marker), "1\n\(url)\n", url)
            XCTAssertEqual(r.stdout, [])
        }
        // Without the final newline too.
        let bare = try openURL("https://no-newline.example/")
        XCTAssertEqual(bare.status, 0, bare.stderr)
        XCTAssertEqual(OpenInVMFile.text(marker), "1\nhttps://no-newline.example/\n")
    }

    func testOtherSchemesAreRefused() throws {
        for url in ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,<script>x</script>", "mailto:a@b.c",
                    "httpx://a", "http:/one-slash", "//example.com/", "example.com", "http://", "ftps://x", "  http://x"] {
            let r = try openURL(url + "\n")
            XCTAssertEqual(r.status, 1, url)
            XCTAssertTrue(r.stderr.hasPrefix("qubes.OpenURL: refused a URL from work: "), "\(url): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "handler ran for \(url)")
        }
        let passwd = try openURL("file:///etc/passwd\n")
        XCTAssertTrue(passwd.stderr.contains("only http://, https:// and ftp://"), passwd.stderr)
        XCTAssertFalse(passwd.stderr.contains("/etc/passwd"), "the refused URL is not echoed back")
    }

    func testSpacesControlCharactersAndExtraLinesAreRefused() throws {
        let cases: [[UInt8]] = [
            Array("http://a b/\n".utf8),
            Array("http://a.example/\nfile:///etc/passwd\n".utf8),
            Array("http://a.example/\n\n".utf8),
            Array("http://a.example/\r\n".utf8),
            Array("http://a.example/\t\n".utf8),
            Array("http://a.example/".utf8) + [0x1b] + Array("[2J\n".utf8),
            Array("http://a.example/".utf8) + [0x00] + Array("x\n".utf8),
            Array("http://a.example/".utf8) + [0x7f],
            Array("http://é.example/\n".utf8),
            [],
            Array("\n".utf8),
        ]
        for bytes in cases {
            let r = try openURL(bytes)
            XCTAssertEqual(r.status, 1, "\(bytes)")
            XCTAssertTrue(r.stderr.contains("refused a URL"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "handler ran for \(bytes)")
        }
    }

    func testLengthIsBounded() throws {
        let longest = "http://" + String(repeating: "a", count: 8192 - 7)
        let ok = try openURL(longest + "\n")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(OpenInVMFile.text(marker), "1\n\(longest)\n")
        let tooLong = try openURL(longest + "a\n")
        XCTAssertEqual(tooLong.status, 1)
        XCTAssertTrue(tooLong.stderr.contains("longer than 8192 bytes"), tooLong.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
        let huge = try openURL([UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20))
        XCTAssertEqual(huge.status, 1)
    }

    func testMissingOrFailingHandlerIsAClearError() throws {
        try h.setConfig("open-in-vm", ["url_handler": "no-such-browser"])
        let r = try openURL("https://example.com/\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(#"URL handler "no-such-browser" not found"#), r.stderr)

        try h.setConfig("open-in-vm", ["url_handler": try s.script("failing-browser", "exit 4")])
        let f = try openURL("https://example.com/\n")
        XCTAssertEqual(f.status, 1)
        XCTAssertTrue(f.stderr.contains("exited with status 4"), f.stderr)
    }
}
