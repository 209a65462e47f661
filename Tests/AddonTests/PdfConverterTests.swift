// PdfConverterTests: ody-convert-pdf and qubes.PdfConvert through the real
// runner. The caller's checks are driven with a fake disposable (a script
// given as ODYSSEY_ADDON_CALL that prints a crafted pixel stream); the
// real round trip renders a hand-written 3-page PDF with poppler.
import Foundation
import Logging
import PluginABI
import XCTest
@testable import Host

final class PdfConverterTests: XCTestCase {
    static let pdftocairo = "/usr/bin/pdftocairo"
    static let pdfinfo = "/usr/bin/pdfinfo"

    // MARK: helpers

    /// A valid PDF with one line of Helvetica text per page, xref offsets
    /// computed here, so the test needs no generator.
    static func textPDF(pages: Int) -> [UInt8] {
        var objects: [String] = []
        objects.append("<< /Type /Catalog /Pages 2 0 R >>")
        let kids = (0..<pages).map { "\(3 + 2 * $0) 0 R" }.joined(separator: " ")
        objects.append("<< /Type /Pages /Kids [\(kids)] /Count \(pages) >>")
        let font = 3 + 2 * pages
        for i in 0..<pages {
            objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 \(font) 0 R >> >> /Contents \(4 + 2 * i) 0 R >>")
            let text = "BT /F1 24 Tf 20 40 Td (Page \(i + 1)) Tj ET"
            objects.append("<< /Length \(text.utf8.count) >>\nstream\n\(text)\nendstream")
        }
        objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        var out = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (n, o) in objects.enumerated() {
            offsets.append(out.utf8.count)
            out += "\(n + 1) 0 obj\n\(o)\nendobj\n"
        }
        let xref = out.utf8.count
        out += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for o in offsets { out += String(format: "%010d 00000 n \n", o) }
        out += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return Array(out.utf8)
    }

    /// A fake qrexec client standing in for the disposable: ignores its
    /// arguments, (optionally) reads the PDF, prints `stream`, exits `status`.
    func fakeDisposable(_ h: AddonHarness, stream: [UInt8], status: Int32 = 0, readsInput: Bool = true) throws -> String {
        let id = UUID().uuidString
        let data = h.root + "/fake-stream-" + id
        let script = h.root + "/fake-dispvm-" + id
        _ = FileManager.default.createFile(atPath: data, contents: Data(stream))
        let body = "#!/bin/sh\n" + (readsInput ? "cat > /dev/null\n" : "") + "cat '\(data)'\nexit \(status)\n"
        try body.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return script
    }

    /// Runs a program, returning its status and output (small outputs only).
    func tool(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A work domain with doc.pdf in its home; returns the harness and the path.
    func workDomainWithPDF(_ bytes: [UInt8] = PdfConverterTests.textPDF(pages: 1)) throws -> (AddonHarness, String) {
        let h = try AddonHarness(addons: ["pdf-converter"])
        h.defaultTarget = "disp1"
        let path = h.home("work") + "/doc.pdf"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return (h, path)
    }

    func files(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// The refusal contract: non-zero exit, the reason, no output of any
    /// kind (no .trusted.pdf, no temp file), the original left in place.
    func assertRefused(_ r: AddonHarness.Result, _ h: AddonHarness, _ path: String, because reason: String,
                       label: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, "\(label) stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(reason), "\(label): expected \"\(reason)\" in: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("doc.pdf: not converted; no output written"), r.stderr, file: file, line: line)
        XCTAssertFalse(r.stderr.unicodeScalars.contains { $0.value == 0x1b }, "escape bytes reached the terminal", file: file, line: line)
        XCTAssertEqual(files(in: h.home("work")), ["doc.pdf"], "output or temp file left behind", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.home("work") + "/QubesUntrustedPDFs"), file: file, line: line)
    }

    func requirePoppler() throws {
        for tool in [Self.pdftocairo, Self.pdfinfo] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is missing: install poppler-utils")
        }
    }

    // MARK: the caller's checks, against a fake disposable

    func testMalformedPixelStreamsAreRefused() throws {
        let rgb: [UInt8] = [1, 2, 3]
        let cases: [(String, [UInt8], String)] = [
            ("nothing at all", [], "the stream ends before the page count"),
            ("count without newline", Array("1".utf8), "the stream ends inside the page count"),
            ("zero pages", Array("0\n".utf8), "page count 0 is outside 1..10000"),
            ("too many pages", Array("10001\n".utf8), "page count 10001 is outside 1..10000"),
            ("overlong count", Array("100000\n".utf8), "the page count is not a plain decimal number"),
            ("overlong line", Array("000000000001\n".utf8), "the page count line is longer than 11 bytes"),
            ("endless line", [UInt8](repeating: 0x31, count: 100_000), "the page count line is longer than 11 bytes"),
            ("negative count", Array("-1\n".utf8), "the page count is not a plain decimal number"),
            ("plus sign", Array("+1\n".utf8), "the page count is not a plain decimal number"),
            ("leading space", Array(" 1\n".utf8), "the page count is not a plain decimal number"),
            ("trailing space", Array("1 \n".utf8), "the page count is not a plain decimal number"),
            ("leading zero", Array("01\n".utf8), "the page count is not a plain decimal number"),
            ("CRLF", Array("1\r\n".utf8), "the page count is not a plain decimal number"),
            ("terminal escape", [0x1b] + Array("[31m\n".utf8), "the page count is not a plain decimal number"),
            ("width 0", Array("1\n0 1\n".utf8), "page size 0 x 1 is outside 1..10000 pixels a side"),
            ("height 0", Array("1\n1 0\n".utf8), "page size 1 x 0 is outside 1..10000 pixels a side"),
            ("width too big", Array("1\n10001 1\n".utf8), "page size 10001 x 1 is outside"),
            ("height too big", Array("1\n1 10001\n".utf8), "page size 1 x 10001 is outside"),
            ("huge size", Array("1\n99999 99999\n".utf8), "page size 99999 x 99999 is outside"),
            ("one number", Array("1\n12\n".utf8), "the page size line is not \"<width> <height>\""),
            ("two spaces", Array("1\n1  1\n".utf8), "the page size line is not two plain decimal numbers"),
            ("size with sign", Array("1\n+1 1\n".utf8), "the page size line is not two plain decimal numbers"),
            ("size garbage", Array("1\n1 x\n".utf8), "the page size line is not two plain decimal numbers"),
            ("short data", Array("1\n2 2\n".utf8) + [UInt8](repeating: 7, count: 11), "the stream ends inside a page's pixels (short data)"),
            ("fewer pages than said", Array("2\n1 1\n".utf8) + rgb, "the stream ends before the page size"),
            ("extra trailing byte", Array("1\n1 1\n".utf8) + rgb + [0], "the stream goes on after the last page (extra data)"),
            ("more pages than said", Array("1\n1 1\n".utf8) + rgb + Array("1 1\n".utf8) + rgb,
             "the stream goes on after the last page (extra data)"),
        ]
        for (name, stream, reason) in cases {
            let (h, path) = try workDomainWithPDF()
            let fake = try fakeDisposable(h, stream: stream)
            let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
            assertRefused(r, h, path, because: reason, label: "case \"\(name)\"")
        }
    }

    func testStreamFromADisposableThatNeverReadsIsStillChecked() throws {
        let (h, path) = try workDomainWithPDF()
        let fake = try fakeDisposable(h, stream: Array("0\n".utf8), readsInput: false)
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        assertRefused(r, h, path, because: "page count 0 is outside")
    }

    func testValidStreamButFailedDisposableIsRefused() throws {
        let (h, path) = try workDomainWithPDF()
        let fake = try fakeDisposable(h, stream: Array("1\n1 1\n".utf8) + [9, 9, 9], status: 3)
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        assertRefused(r, h, path, because: "the conversion failed in the disposable (exit status 3)")
    }

    /// Interrupted mid-page (the fake disposable signals its caller, the
    /// client, while the client waits for pixels): the temp file goes too.
    func testInterruptedConversionLeavesNoTempFile() throws {
        let (h, path) = try workDomainWithPDF()
        let script = h.root + "/fake-interrupting"
        try "#!/bin/sh\ncat > /dev/null\nprintf '1\\n2 2\\n'\nkill -TERM $PPID\nsleep 2\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": script])
        XCTAssertEqual(r.status, 128 + SIGTERM, r.stderr)
        XCTAssertEqual(files(in: h.home("work")), ["doc.pdf"], "temp file left behind")
    }

    func testPolicyRefusalLeavesNothing() throws {
        let (h, path) = try workDomainWithPDF()
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODY_LOOPBACK_DENY": "qubes.PdfConvert"])
        assertRefused(r, h, path, because: "the call to qubes.PdfConvert was refused by policy")
    }

    /// A good stream from the fake: the PDF is built from exactly these
    /// pixels, page size = pixels at the configured resolution.
    func testValidCraftedStreamBecomesAPDF() throws {
        let (h, path) = try workDomainWithPDF()
        try h.setConfig("pdf-converter", ["resolution": "72"])
        var stream = Array("2\n3 2\n".utf8) + [UInt8](repeating: 0, count: 18)
        stream += Array("2 3\n".utf8) + [UInt8](repeating: 255, count: 18)
        let fake = try fakeDisposable(h, stream: stream)
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("doc.pdf: page 1/2 (3x2 pixels)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("doc.pdf: page 2/2 (2x3 pixels)"), r.stderr)
        let home = h.home("work")
        XCTAssertEqual(files(in: home), ["QubesUntrustedPDFs", "doc.trusted.pdf"])
        XCTAssertEqual(files(in: home + "/QubesUntrustedPDFs"), ["doc.pdf"])
        XCTAssertTrue(r.stdoutText.contains("doc.pdf -> "), r.stdoutText)
        let pdf = try Data(contentsOf: URL(fileURLWithPath: home + "/doc.trusted.pdf"))
        let text = String(decoding: pdf, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("%PDF-1.4\n"))
        XCTAssertTrue(text.contains("/MediaBox [0 0 3.0000 2.0000]"), "72 DPI: a pixel is a point")
        XCTAssertTrue(text.contains("/Width 2 /Height 3 /ColorSpace /DeviceRGB"))
        XCTAssertTrue(text.hasSuffix("%%EOF\n"))
        guard FileManager.default.isExecutableFile(atPath: Self.pdfinfo) else { throw XCTSkip("pdfinfo missing (poppler-utils) for the last check") }
        let info = try tool(Self.pdfinfo, [home + "/doc.trusted.pdf"])
        XCTAssertEqual(info.status, 0, info.output)
        XCTAssertTrue(info.output.range(of: #"Pages:\s+2\n"#, options: .regularExpression) != nil, info.output)
        XCTAssertFalse(info.output.contains("Syntax Error"), info.output)
    }

    /// The disposable's pixels cannot fill the caller's disk: a PDF that
    /// would leave less than min_free_percent free is refused, nothing kept.
    func testRebuiltPDFThatWouldFillTheDiskIsRefused() throws {
        let (h, path) = try workDomainWithPDF()
        try h.setConfig("pdf-converter", ["resolution": "72", "min_free_percent": "100"])
        let fake = try fakeDisposable(h, stream: Array("1\n3 2\n".utf8) + [UInt8](repeating: 0, count: 18))
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        assertRefused(r, h, path, because: "the new PDF would leave less free space than min_free_percent keeps")
    }

    func testExistingTrustedFileIsNotOverwritten() throws {
        let (h, path) = try workDomainWithPDF()
        let existing = h.home("work") + "/doc.trusted.pdf"
        _ = FileManager.default.createFile(atPath: existing, contents: Data("keep me".utf8))
        let fake = try fakeDisposable(h, stream: Array("1\n1 1\n".utf8) + [1, 2, 3])
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("doc.trusted.pdf already exists; not overwriting it"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep me")
        XCTAssertEqual(files(in: h.home("work")), ["doc.pdf", "doc.trusted.pdf"])
    }

    func testArchiveNameTakenGetsASuffix() throws {
        let (h, path) = try workDomainWithPDF()
        let archive = h.home("work") + "/QubesUntrustedPDFs"
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: archive + "/doc.pdf", contents: Data("older".utf8))
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let fake = try fakeDisposable(h, stream: Array("1\n1 1\n".utf8) + [1, 2, 3])
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(files(in: archive), ["doc.1.pdf", "doc.pdf"])
        XCTAssertEqual(try String(contentsOfFile: archive + "/doc.pdf", encoding: .utf8), "older")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: archive + "/doc.1.pdf")), original)
        XCTAssertTrue(r.stdoutText.contains("original moved to \(archive)/doc.1.pdf"), r.stdoutText)
    }

    /// Several files: each converted on its own (one disposable each); one
    /// failure does not stop the others, and the exit status reports it.
    func testSeveralFilesOneFailing() throws {
        let (h, path) = try workDomainWithPDF()
        let home = h.home("work")
        let second = home + "/second.PDF"
        try FileManager.default.copyItem(atPath: path, toPath: second)
        _ = FileManager.default.createFile(atPath: home + "/doc.trusted.pdf", contents: Data("keep".utf8))
        let fake = try fakeDisposable(h, stream: Array("1\n1 1\n".utf8) + [1, 2, 3])
        let r = try h.runCommand(["ody-convert-pdf", path, "second.PDF"], in: "work", env: ["ODYSSEY_ADDON_CALL": fake])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("doc.trusted.pdf already exists"), r.stderr)
        XCTAssertTrue(r.stderr.contains("1 of 2 files not converted"), r.stderr)
        XCTAssertEqual(files(in: home), ["QubesUntrustedPDFs", "doc.pdf", "doc.trusted.pdf", "second.trusted.pdf"])
        XCTAssertEqual(files(in: home + "/QubesUntrustedPDFs"), ["second.PDF"])
        XCTAssertEqual(try String(contentsOfFile: home + "/doc.trusted.pdf", encoding: .utf8), "keep")
    }

    func testUsage() throws {
        let h = try AddonHarness(addons: ["pdf-converter"])
        let help = try h.runCommand(["ody-convert-pdf", "--help"], in: "work")
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdoutText.hasPrefix("usage: ody-convert-pdf [--help] FILE...\n"), help.stdoutText)
        let none = try h.runCommand(["ody-convert-pdf"], in: "work")
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stderr.contains("usage:"), none.stderr)
        let bad = try h.runCommand(["ody-convert-pdf", "--bogus", "x.pdf"], in: "work")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("unknown option --bogus"), bad.stderr)
        let missing = try h.runCommand(["ody-convert-pdf", "nope.pdf"], in: "work")
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nope.pdf: No such file or directory"), missing.stderr)
        XCTAssertTrue(h.calls.isEmpty, "no disposable for a file that is not there")
    }

    // MARK: the real service (poppler)

    func testThreePagePDFRoundTripsThroughTheRealService() throws {
        try requirePoppler()
        let (h, path) = try workDomainWithPDF(Self.textPDF(pages: 3))
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let tmp = h.root + "/dispvm-tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work", env: ["TMPDIR": tmp])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(h.calls, ["work disp1 qubes.PdfConvert"])
        for p in 1...3 { XCTAssertTrue(r.stderr.contains("doc.pdf: page \(p)/3 (278x139 pixels)"), r.stderr) }
        XCTAssertEqual(files(in: tmp), [], "the disposable's temp dir is removed")

        let home = h.home("work")
        let trusted = home + "/doc.trusted.pdf"
        XCTAssertEqual(files(in: home), ["QubesUntrustedPDFs", "doc.trusted.pdf"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: home + "/QubesUntrustedPDFs/doc.pdf")), original)

        let info = try tool(Self.pdfinfo, [trusted])
        XCTAssertEqual(info.status, 0, info.output)
        XCTAssertTrue(info.output.range(of: #"Pages:\s+3\n"#, options: .regularExpression) != nil, info.output)
        XCTAssertTrue(info.output.contains("Page size:       200.16 x 100.08 pts"), info.output)
        XCTAssertFalse(info.output.contains("Error"), info.output)
        // Nothing of the original's structure survives: no fonts, no text.
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: trusted)), as: UTF8.self)
        XCTAssertFalse(text.contains("/Font"))
        XCTAssertFalse(text.contains("Page 1"))

        // It renders again, to the very pixels the original gave.
        let rerender = h.root + "/rerender"
        let cairo = try tool(Self.pdftocairo, ["-png", "-r", "100", trusted, rerender])
        XCTAssertEqual(cairo.status, 0, cairo.output)
        XCTAssertEqual(files(in: h.root).filter { $0.hasPrefix("rerender-") }, ["rerender-1.png", "rerender-2.png", "rerender-3.png"])
        let fromOriginal = try h.runService("qubes.PdfConvert", source: "work", in: "disp2", stdin: Array(original))
        let fromTrusted = try h.runService("qubes.PdfConvert", source: "work", in: "disp3", stdinPath: trusted)
        XCTAssertEqual(fromOriginal.status, 0, fromOriginal.stderr)
        XCTAssertEqual(fromTrusted.status, 0, fromTrusted.stderr)
        XCTAssertEqual(fromOriginal.stdout.count, 2 + 3 * (8 + 278 * 139 * 3))
        XCTAssertTrue(fromOriginal.stdout == fromTrusted.stdout, "pixels differ after the round trip")
    }

    /// Twelve pages: the renderer pads file names (page-01.png...); the
    /// pages must still come back in order (each page's text differs, so
    /// any reordering changes the pixels).
    func testTwelvePagesKeepTheirOrder() throws {
        try requirePoppler()
        let (h, path) = try workDomainWithPDF(Self.textPDF(pages: 12))
        try h.setConfig("pdf-converter", ["resolution": "50"])
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("page 12/12 (139x70 pixels)"), r.stderr)
        let trusted = h.home("work") + "/doc.trusted.pdf"
        let a = try h.runService("qubes.PdfConvert", source: "work", in: "disp2", stdin: Array(original))
        let b = try h.runService("qubes.PdfConvert", source: "work", in: "disp3", stdinPath: trusted)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stdout.starts(with: Array("12\n139 70\n".utf8)))
        XCTAssertTrue(a.stdout == b.stdout, "pages reordered or changed")
    }

    /// pdftocairo -transp writes RGBA PNGs: the alpha is composited over
    /// white, giving the very pixels of the opaque rendering.
    func testTransparentRenderingIsCompositedOverWhite() throws {
        try requirePoppler()
        let h = try AddonHarness(addons: ["pdf-converter"])
        let wrapper = h.root + "/pdftocairo-transp"
        try "#!/bin/sh\nexec \(Self.pdftocairo) -transp \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let pdf = Self.textPDF(pages: 2)
        let opaque = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: pdf)
        try h.setConfig("pdf-converter", ["renderer": wrapper])
        let transparent = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: pdf)
        XCTAssertEqual(opaque.status, 0, opaque.stderr)
        XCTAssertEqual(transparent.status, 0, transparent.stderr)
        XCTAssertEqual(opaque.stdout.count, 2 + 2 * (8 + 278 * 139 * 3))
        XCTAssertTrue(opaque.stdout == transparent.stdout, "RGBA pages differ from RGB ones")
    }

    func testServiceRefusesWhatIsNotAPDF() throws {
        try requirePoppler()
        let h = try AddonHarness(addons: ["pdf-converter"])
        let r = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: Array("not a pdf at all\n".utf8))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stdout, [], "not one byte of a stream")
        XCTAssertTrue(r.stderr.contains("qubes.PdfConvert: the renderer could not render the PDF"), r.stderr)
        let empty = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: [])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("no PDF received"), empty.stderr)
    }

    func testServiceRefusesPagesTooLargeToSend() throws {
        try requirePoppler()
        let h = try AddonHarness(addons: ["pdf-converter"])
        // 200 x 100 pt at 1200 DPI is 3334 x 1667: fine; make it too big via
        // a page of 7300 x 100 pt (10139 px wide at 100 DPI).
        var pdf = String(decoding: Self.textPDF(pages: 1), as: UTF8.self)
        pdf = pdf.replacingOccurrences(of: "/MediaBox [0 0 200 100]", with: "/MediaBox [0 0 7300 100]")
        let r = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: Array(pdf.utf8))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stdout, [])
        XCTAssertTrue(r.stderr.contains("page 1: a rendered page is 10139x139 pixels; at most 10000x10000"), r.stderr)
    }

    func testMissingRendererIsNamed() throws {
        let h = try AddonHarness(addons: ["pdf-converter"])
        try h.setConfig("pdf-converter", ["renderer": "/nonexistent/pdftocairo"])
        let r = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: Self.textPDF(pages: 1))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("the renderer /nonexistent/pdftocairo is missing (install poppler-utils)"), r.stderr)
    }

    func testBadResolutionStopsBothSides() throws {
        let (h, path) = try workDomainWithPDF()
        try h.setConfig("pdf-converter", ["resolution": "lots"])
        let r = try h.runCommand(["ody-convert-pdf", path], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("config resolution=\"lots\" is not a number of DPI in 10..1200"), r.stderr)
        XCTAssertTrue(h.calls.isEmpty)
        let s = try h.runService("qubes.PdfConvert", source: "work", in: "disp1", stdin: Self.textPDF(pages: 1))
        XCTAssertEqual(s.status, 1)
        XCTAssertEqual(s.stdout, [])
    }
}
