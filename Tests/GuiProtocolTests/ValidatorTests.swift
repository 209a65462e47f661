import XCTest
@testable import GuiProtocol

/// One test (or more) per validator: what it admits, and what closes the channel.
final class ValidatorTests: XCTestCase {
    /// Feeds whole messages, returns every admitted message or the first error.
    func run(_ messages: [[UInt8]], limits: GuiLimits = GuiLimits()) -> ([DomainMessage], GuiProtocolError?) {
        var validator = GuiValidator(limits: limits)
        var reader = GuiStreamReader()
        var out: [DomainMessage] = []
        reader.feed(GuiEncode.hello())
        for m in messages { reader.feed(m) }
        do throws(GuiProtocolError) {
            while let m = try reader.next(&validator) { out.append(m) }
        } catch { return (out, error) }
        return (out, nil)
    }

    let rect = GuiRect(x: 10, y: 20, width: 100, height: 50)

    func testHelloNegotiatesAndRefusesOtherMajors() {
        XCTAssertEqual(run([]).0, [.hello(minor: GuiVersion.minor)])
        var v = GuiValidator(), r = GuiStreamReader()
        r.feed(GuiEncode.hello(major: 2, minor: 0))
        XCTAssertThrowsError(try r.next(&v)) { XCTAssertEqual(($0 as? GuiProtocolError)?.kind, .versionMismatch) }
        var v2 = GuiValidator(), r2 = GuiStreamReader()
        r2.feed(GuiEncode.create(window: 1, rect))
        XCTAssertThrowsError(try r2.next(&v2)) { XCTAssertEqual(($0 as? GuiProtocolError)?.kind, .helloExpected) }
        XCTAssertEqual(run([GuiEncode.hello()]).1?.kind, .duplicateHello)
        XCTAssertThrowsError(try GuiValidator().admit(GuiHeader(rawType: GuiMessageType.hello.rawValue, window: 0, untrustedLength: 4))) {
            XCTAssertEqual(($0 as? GuiProtocolError)?.kind, .badLength)
        }
    }

    func testCreateBoundsSizePositionAndCount() {
        let ok = run([GuiEncode.create(window: 7, rect)])
        XCTAssertNil(ok.1)
        XCTAssertEqual(ok.0.last, .create(window: 7, rect: rect, parent: 0, overrideRedirect: false))
        XCTAssertEqual(run([GuiEncode.create(window: 7, rect), GuiEncode.create(window: 7, rect)]).1?.kind, .windowExists)
        XCTAssertEqual(run([GuiEncode.create(window: 0, rect)]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.create(window: 1, GuiRect(x: 0, y: 0, width: 16385, height: 10))]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.create(window: 1, GuiRect(x: 0, y: 0, width: 10, height: 0))]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.create(window: 1, GuiRect(x: Int32.min, y: 0, width: 10, height: 10))]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect, parent: 99)]).1?.kind, .unknownWindow)
        var limits = GuiLimits(); limits.maxWindows = 3
        let many = (1...4).map { GuiEncode.create(window: UInt32($0), rect) }
        let (admitted, error) = run(many, limits: limits)
        XCTAssertEqual(admitted.count, 4)   // hello + 3 windows
        XCTAssertEqual(error?.kind, .tooManyWindows)
        // A destroyed window frees its place.
        XCTAssertNil(run([many[0], many[1], many[2], GuiEncode.destroy(window: 2), many[3]], limits: limits).1)
    }

    func testPixelMemoryIsBoundedAcrossWindows() {
        var limits = GuiLimits(); limits.maxPixelBytes = 1 << 20   // 262144 pixels
        let half = GuiRect(x: 0, y: 0, width: 512, height: 256)      // 131072 pixels each
        XCTAssertNil(run([GuiEncode.create(window: 1, half), GuiEncode.create(window: 2, half)], limits: limits).1)
        XCTAssertEqual(run([GuiEncode.create(window: 1, half), GuiEncode.create(window: 2, half), GuiEncode.create(window: 3, one)], limits: limits).1?.kind, .tooManyPixels)
        // Growing a window counts its new size; destroying one gives its pixels back.
        XCTAssertEqual(run([GuiEncode.create(window: 1, half), GuiEncode.create(window: 2, half),
                            GuiEncode.configure(window: 2, GuiRect(x: 0, y: 0, width: 512, height: 257))], limits: limits).1?.kind, .tooManyPixels)
        XCTAssertNil(run([GuiEncode.create(window: 1, half), GuiEncode.create(window: 2, half), GuiEncode.destroy(window: 1),
                          GuiEncode.create(window: 3, half), GuiEncode.configure(window: 3, GuiRect(x: 0, y: 0, width: 256, height: 256))], limits: limits).1)
        // The defaults admit the largest window Qubes allows.
        XCTAssertNil(run([GuiEncode.create(window: 1, GuiRect(x: 0, y: 0, width: 16384, height: 6144))]).1)
    }

    let one = GuiRect(x: 0, y: 0, width: 1, height: 1)

    func testOverrideRedirectIsZeroOrOne() {
        var bad = GuiMessageWriter(.create, window: 1)
        for v: UInt32 in [0, 0, 10, 10, 0, 2] { bad.put(v) }
        XCTAssertEqual(run([bad.message]).1?.kind, .badValue)
    }

    func testDestroyMapUnmapNeedAKnownWindow() {
        for m in [GuiEncode.destroy(window: 5), GuiEncode.map(window: 5), GuiEncode.unmap(window: 5), GuiEncode.title(window: 5, "x")] {
            XCTAssertEqual(run([m]).1?.kind, .unknownWindow)
        }
        let (out, err) = run([GuiEncode.create(window: 5, rect), GuiEncode.map(window: 5, overrideRedirect: true),
                              GuiEncode.unmap(window: 5), GuiEncode.destroy(window: 5)])
        XCTAssertNil(err)
        XCTAssertEqual(Array(out.dropFirst(2)), [.map(window: 5, transientFor: 0, overrideRedirect: true), .unmap(window: 5), .destroy(window: 5)])
        XCTAssertEqual(run([GuiEncode.create(window: 5, rect), GuiEncode.map(window: 5, transientFor: 6)]).1?.kind, .unknownWindow)
        XCTAssertEqual(run([GuiEncode.create(window: 5, rect), GuiEncode.destroy(window: 5), GuiEncode.map(window: 5)]).1?.kind, .unknownWindow)
    }

    func testConfigureResizesTheWindowDamageIsClippedTo() {
        let (out, err) = run([GuiEncode.create(window: 1, rect), GuiEncode.configure(window: 1, GuiRect(x: 0, y: 0, width: 4, height: 4)),
                              GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: 8, height: 1), pixels: [UInt8](repeating: 9, count: 32))])
        XCTAssertNil(err)
        XCTAssertEqual(out.last, .damage(window: 1, rect: GuiRect(x: 0, y: 0, width: 4, height: 1), pixels: [UInt8](repeating: 9, count: 16)))
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.configure(window: 1, GuiRect(x: 0, y: 0, width: 0, height: 4))]).1?.kind, .badValue)
    }

    func testTitleIsBoundedAndSanitised() {
        let (out, err) = run([GuiEncode.create(window: 1, rect), GuiEncode.title(window: 1, "a\u{202E}b\nc\u{7}d")])
        XCTAssertNil(err)
        XCTAssertEqual(out.last, .title(window: 1, text: "abcd"))
        // A domain may write brackets; the daemon's prefix still comes first.
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.title(window: 1, "[vault] x")]).0.last, .title(window: 1, text: "[vault] x"))
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.title(window: 1, String(repeating: "x", count: 129))]).1?.kind, .badLength)
        var bytes = GuiMessageWriter(.title, window: 1); bytes.put(bytes: [0xff, 0x41])
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), bytes.message]).0.last, .title(window: 1, text: "\u{FFFD}A"))
        // Multi-byte text is cut on a character, within the byte limit.
        XCTAssertEqual(GuiText.printable(ArraySlice(Array("ééé".utf8)), maxBytes: 5), "éé")
    }

    func testWindowClass() {
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.windowClass(window: 1, resClass: "XTerm", resName: "x\u{1}term")]).0.last,
                       .windowClass(window: 1, resClass: "XTerm", resName: "x_term"))
        var noNul = GuiMessageWriter(.windowClass, window: 1); noNul.put(bytes: Array("XTerm".utf8))
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), noNul.message]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.windowClass(window: 1, resClass: String(repeating: "c", count: 65), resName: "")]).1?.kind, .badLength)
    }

    func testHintsAreClamped() {
        let huge = GuiSizeHints(minWidth: 1, minHeight: 2, maxWidth: .max, maxHeight: .max, widthIncrement: 3, heightIncrement: 4, baseWidth: 5, baseHeight: 6)
        XCTAssertEqual(run([GuiEncode.create(window: 1, rect), GuiEncode.hints(window: 1, huge)]).0.last,
                       .hints(window: 1, hints: GuiSizeHints(minWidth: 1, minHeight: 2, maxWidth: 16384, maxHeight: 6144,
                                                             widthIncrement: 3, heightIncrement: 4, baseWidth: 5, baseHeight: 6)))
    }

    func testDamageIsClippedOrRefused() {
        let create = GuiEncode.create(window: 1, GuiRect(x: 0, y: 0, width: 4, height: 4))
        // 3x3 at (-1,-1): the top-left pixel row and column fall outside.
        var pixels: [UInt8] = []
        for i in 0..<9 { pixels += [UInt8(i), 0, 0, 0] }
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: -1, y: -1, width: 3, height: 3), pixels: pixels)]).0.last,
                       .damage(window: 1, rect: GuiRect(x: 0, y: 0, width: 2, height: 2), pixels: [4, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0]))
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: 100, y: 0, width: 1, height: 1), pixels: [1, 2, 3, 4])]).0.last,
                       .damageOutside(window: 1))
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: Int32.min, y: Int32.min, width: 1, height: 1), pixels: [1, 2, 3, 4])]).0.last,
                       .damageOutside(window: 1))
        // Sizes the pixels do not match, huge sizes, negative sizes (as u32), unknown windows: fatal.
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: 2, height: 2), pixels: [1, 2, 3, 4])]).1?.kind, .badLength)
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: 0xFFFF_FFFF, height: 0xFFFF_FFFF), pixels: [])]).1?.kind, .badValue)
        XCTAssertEqual(run([create, GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: UInt32(bitPattern: -1), height: 1), pixels: [])]).1?.kind, .badValue)
        XCTAssertEqual(run([GuiEncode.damage(window: 9, GuiRect(x: 0, y: 0, width: 1, height: 1), pixels: [1, 2, 3, 4])]).1?.kind, .unknownWindow)
    }

    func testClipboardLimits() {
        XCTAssertEqual(run([GuiEncode.clipboardData(Array("hi".utf8))]).0.last, .clipboardData(bytes: Array("hi".utf8)))
        XCTAssertEqual(run([GuiEncode.clipboardData([UInt8](repeating: 1, count: 64001))]).0.last, .clipboardTooLarge(size: 64001))
        let over = GuiMessageWriter(rawType: GuiMessageType.clipboardData.rawValue, window: 0, claimedLength: 256_002).bytes
        XCTAssertEqual(run([over]).1?.kind, .badLength)
        var withWindow = GuiMessageWriter(.clipboardData, window: 3); withWindow.put(bytes: [1])
        XCTAssertEqual(run([withWindow.message]).1?.kind, .badValue)
    }

    func testLengthsAreBoundedBeforeTheBodyIsRead() throws {
        // A header claiming 4 GB is refused from the header alone: nothing is buffered for it.
        var v = GuiValidator(), r = GuiStreamReader()
        r.feed(GuiEncode.hello())
        XCTAssertNotNil(try r.next(&v))
        r.feed(GuiMessageWriter(rawType: GuiMessageType.damage.rawValue, window: 1, claimedLength: .max).bytes)
        XCTAssertThrowsError(try r.next(&v)) { XCTAssertEqual(($0 as? GuiProtocolError)?.kind, .badLength) }
        for (type, len) in [(GuiMessageType.create, 23), (.create, 25), (.destroy, 1), (.map, 0), (.hints, 40)] {
            XCTAssertEqual(try GuiValidator().admitAfterHello(GuiHeader(rawType: type.rawValue, window: 1, untrustedLength: UInt32(len)), type), .badLength, "\(type) \(len)")
        }
        XCTAssertEqual(run([GuiMessageWriter(rawType: 999, window: 1, claimedLength: 0).message]).1?.kind, .unknownType)
        XCTAssertEqual(run([GuiEncode.focus(window: 1, focused: true)]).1?.kind, .wrongDirection)
    }

    func testTruncatedMessageWaitsThenCompletes() throws {
        var v = GuiValidator(), r = GuiStreamReader()
        let bytes = GuiEncode.hello() + GuiEncode.create(window: 1, rect)
        for b in bytes.dropLast() { r.feed([b]); _ = try r.next(&v) }
        XCTAssertNil(try r.next(&v))
        r.feed([bytes.last!])
        XCTAssertEqual(try r.next(&v), .create(window: 1, rect: rect, parent: 0, overrideRedirect: false))
    }

    func testLimitsAreValidated() {
        var l = GuiLimits(); l.maxWindowWidth = 40000
        XCTAssertThrowsError(try l.validated())
        l = GuiLimits(); l.maxClipboardBytes = 10
        XCTAssertThrowsError(try l.validated())
        XCTAssertNoThrow(try GuiLimits().validated())
    }
}

extension GuiValidator {
    /// The kind of error `admit` gives for `header` in a session past hello (nil: admitted).
    func admitAfterHello(_ header: GuiHeader, _ type: GuiMessageType) throws -> GuiProtocolError.Kind? {
        var v = self
        var r = GuiStreamReader()
        r.feed(GuiEncode.hello())
        _ = try r.next(&v)
        do { _ = try v.admit(header); return nil } catch { return error.kind }
    }
}
