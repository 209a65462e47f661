// The gui-daemon on a real (headless) X server: what appears on the screen
// when a domain speaks the protocol, and what does not when it attacks.
import CX11
import Foundation
import GuiProtocol
import PluginABI
import XCTest

final class GuiDaemonTests: XCTestCase {
    static let blue: UInt32 = 0x3465a4, green: UInt32 = 0x73d216
    var screen: XvfbScreen!
    var gui: GuiPlugin!

    override func setUpWithError() throws {
        screen = try XvfbScreen()
        gui = try GuiPlugin(config: ["display": screen.displayName])
    }

    override func tearDown() {
        gui?.close()
        screen?.stop()
    }

    /// A recognisable picture: every pixel differs from the frame colours.
    static func pattern(width: Int, height: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(width * height * 4)
        for y in 0..<height { for x in 0..<width { out += [0x40, UInt8(truncatingIfNeeded: y * 11), UInt8(truncatingIfNeeded: x * 7), 0] } }
        return out
    }

    static func rgb(_ p: [UInt8], _ i: Int) -> UInt32 { UInt32(p[i * 4 + 2]) << 16 | UInt32(p[i * 4 + 1]) << 8 | UInt32(p[i * 4]) }

    /// A domain with one mapped, titled window showing `pattern`.
    func showWindow(_ d: FakeDomain, id: UInt32 = 1, at r: GuiRect, title: String) {
        d.send(GuiEncode.create(window: id, r) + GuiEncode.title(window: id, title) + GuiEncode.map(window: id)
               + GuiEncode.damage(window: id, GuiRect(x: 0, y: 0, width: r.width, height: r.height),
                                  pixels: Self.pattern(width: Int(r.width), height: Int(r.height))))
    }

    /// Every frame pixel of a titled window has the label colour, except title text.
    /// The daemon draws a frame on the Expose that follows the map, on its own
    /// thread: a mapped window may not be painted yet, so the check is retried
    /// for up to 20 s and the last wrong pixel reported.
    func assertFrame(_ w: XvfbScreen.TopWindow, color: UInt32, titled: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        let top = titled ? 18 : 2
        func wrongPixel() -> String? {
            let px = screen.pixels(x: w.x, y: w.y, width: w.width, height: w.height)
            for y in 0..<Int(w.height) {
                for x in 0..<Int(w.width) where y < top || y >= Int(w.height) - 2 || x < 2 || x >= Int(w.width) - 2 {
                    // Inside the title bar text may be drawn, in the text colour only.
                    let allowed: Set<UInt32> = titled && y >= 2 && y < top - 1 ? [color, 0xffffff, 0x000000] : [color]
                    if !allowed.contains(px[y][x]) {
                        return "frame pixel (\(x),\(y)) of \(w.name) is \(String(px[y][x], radix: 16)), not the label colour"
                    }
                }
            }
            return nil
        }
        let deadline = Date().addingTimeInterval(20)
        var wrong = wrongPixel()
        while wrong != nil && Date() < deadline { usleep(10_000); wrong = wrongPixel() }
        if let wrong { XCTFail(wrong, file: file, line: line) }
    }

    func testWindowIsFramedInItsLabelColourTitledAndShowsTheDomainsPixels() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        let size = try work.handshake()
        XCTAssertEqual(size.width, 1280); XCTAssertEqual(size.height, 1024)
        let r = GuiRect(x: 100, y: 120, width: 64, height: 40)
        showWindow(work, at: r, title: "editor")
        let expected = Self.pattern(width: 64, height: 40)
        var found: XvfbScreen.TopWindow?
        XCTAssert(screen.waitUntil("[work] editor shows the domain's pixels") {
            guard let w = screen.window(named: "[work] editor"), w.mapped else { return false }
            found = w
            let px = screen.pixels(x: w.x + 2, y: w.y + 18, width: 64, height: 40)
            return px.count == 40 && (0..<40).allSatisfy { y in (0..<64).allSatisfy { x in px[y][x] == Self.rgb(expected, y * 64 + x) } }
        })
        let w = try XCTUnwrap(found)
        XCTAssertEqual([w.x, w.y, w.width, w.height], [100, 120, 64 + 4, 40 + 18 + 2], "the frame surrounds the content exactly")
        XCTAssertFalse(w.overrideRedirect)
        assertFrame(w, color: Self.blue)
        if screen.hasFixedFont {
            let bar = screen.pixels(x: w.x, y: w.y, width: w.width, height: 18).joined()
            XCTAssert(bar.contains(titleTextColor(Self.blue)), "the title text is drawn in the title bar")
        } else {
            print("GuiDaemonTests: this X server has no 'fixed' font: title text not drawn, checked by name only")
        }
    }

    func testDamageIsClippedInsideTheFrame() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        _ = try work.handshake()
        showWindow(work, at: GuiRect(x: 200, y: 200, width: 30, height: 20), title: "clip")
        XCTAssert(screen.waitUntil("the window is up") { screen.window(named: "[work] clip")?.mapped == true })
        let red = [UInt8](repeating: 0, count: 0) + (0..<(50 * 50)).flatMap { _ in [0x00, 0x00, 0xff, 0x00] as [UInt8] }
        // Overhanging every edge, negative positions included.
        work.send(GuiEncode.damage(window: 1, GuiRect(x: -10, y: -10, width: 50, height: 50), pixels: red))
        let w = try XCTUnwrap(screen.window(named: "[work] clip"))
        XCTAssert(screen.waitUntil("the content is red") {
            screen.pixels(x: w.x + 2, y: w.y + 18, width: 30, height: 20).joined().allSatisfy { $0 == 0xff0000 }
        })
        assertFrame(w, color: Self.blue)
        // Entirely outside: nothing drawn, channel open.
        work.send(GuiEncode.damage(window: 1, GuiRect(x: 5000, y: 5000, width: 50, height: 50), pixels: red))
        work.send(GuiEncode.title(window: 1, "still here"))
        XCTAssert(screen.waitUntil("the domain is still served") { screen.window(named: "[work] still here") != nil })
        assertFrame(try XCTUnwrap(screen.window(named: "[work] still here")), color: Self.blue)
    }

    func testATitleCannotClaimAnotherDomainsBracket() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        _ = try work.handshake()
        showWindow(work, at: GuiRect(x: 10, y: 10, width: 20, height: 10), title: "[vault] secrets")
        work.send(GuiEncode.create(window: 2, GuiRect(x: 50, y: 10, width: 20, height: 10)) + GuiEncode.map(window: 2)
                  + GuiEncode.title(window: 2, "\u{202E}[tluav]"))
        XCTAssert(screen.waitUntil("both titles are set") {
            let names = screen.windows().map(\.name)
            return names.contains("[work] [vault] secrets") && names.contains("[work] [tluav]")
        })
        XCTAssertFalse(screen.windows().contains { $0.name.hasPrefix("[vault]") })
    }

    func testOverrideRedirectKeepsABorderAndLosesTheFlagOverNinetyPercent() throws {
        let work = try gui.attach("work", label: "green", color: Self.green)
        _ = try work.handshake()
        work.send(GuiEncode.create(window: 1, GuiRect(x: 300, y: 300, width: 60, height: 30), overrideRedirect: true)
                  + GuiEncode.title(window: 1, "menu") + GuiEncode.map(window: 1, overrideRedirect: true))
        XCTAssert(screen.waitUntil("the menu is mapped") { screen.window(named: "[work] menu")?.mapped == true })
        let menu = try XCTUnwrap(screen.window(named: "[work] menu"))
        XCTAssertTrue(menu.overrideRedirect)
        XCTAssertEqual([menu.width, menu.height], [64, 34], "a 2 px border on every side, no title bar")
        assertFrame(menu, color: Self.green, titled: false)
        work.send(GuiEncode.create(window: 2, GuiRect(x: 0, y: 0, width: 1280, height: 1024), overrideRedirect: true)
                  + GuiEncode.title(window: 2, "fake desktop") + GuiEncode.map(window: 2, overrideRedirect: true))
        XCTAssert(screen.waitUntil("the screen-sized window is mapped") { screen.window(named: "[work] fake desktop")?.mapped == true })
        let full = try XCTUnwrap(screen.window(named: "[work] fake desktop"))
        XCTAssertFalse(full.overrideRedirect, "a screen-sized override-redirect window becomes a normal one")
        XCTAssertEqual([full.width, full.height], [1284, 1044], "and gets the titled frame")
        XCTAssertEqual(Set(screen.pixels(x: 0, y: 0, width: 1280, height: 18).joined()).subtracting([0xffffff, 0x000000]), [Self.green],
                       "its title bar shows on screen in the label colour")
    }

    func testTenThousandWindowsCloseOnlyThatDomain() throws {
        let personal = try gui.attach("personal", label: "green", color: Self.green)
        _ = try personal.handshake()
        showWindow(personal, at: GuiRect(x: 600, y: 600, width: 40, height: 20), title: "mail")
        XCTAssert(screen.waitUntil("personal's window is up") { screen.window(named: "[personal] mail")?.mapped == true })

        let work = try gui.attach("work", label: "blue", color: Self.blue)
        _ = try work.handshake()
        let writer = Thread {
            for i in 1...10_000 {
                guard work.send(GuiEncode.create(window: UInt32(i), GuiRect(x: 0, y: 0, width: 16, height: 16)) + GuiEncode.map(window: UInt32(i))) else { return }
            }
        }
        writer.start()
        XCTAssert(work.waitForClose(), "the 1025th window closes work's channel")
        XCTAssert(screen.waitUntil("work's windows are gone") { !screen.windows().contains { $0.name.hasPrefix("[work]") } })
        let mail = try XCTUnwrap(screen.window(named: "[personal] mail"))
        XCTAssert(mail.mapped)
        assertFrame(mail, color: Self.green)
        XCTAssert(gui.host.logs.contains { $0.contains("work's GUI channel closed") && $0.contains("too many windows") }, "\(gui.host.logs)")
        // personal is still served.
        personal.send(GuiEncode.title(window: 1, "inbox"))
        XCTAssert(screen.waitUntil("personal is still served") { screen.window(named: "[personal] inbox") != nil })
    }

    /// Each malformed stream closes that domain's channel; the other domain's window is untouched.
    func testMalformedMessagesCloseOnlyTheSendersChannel() throws {
        let personal = try gui.attach("personal", label: "green", color: Self.green)
        _ = try personal.handshake()
        showWindow(personal, at: GuiRect(x: 700, y: 100, width: 40, height: 20), title: "mail")
        XCTAssert(screen.waitUntil("personal's window is up") { screen.window(named: "[personal] mail")?.mapped == true })

        let one = GuiRect(x: 0, y: 0, width: 1, height: 1)
        let attacks: [(String, [UInt8])] = [
            ("oversized length", GuiMessageWriter(rawType: GuiMessageType.damage.rawValue, window: 1, claimedLength: .max).bytes),
            ("huge damage", GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: 0xFFFF_FFFF, height: 0xFFFF_FFFF), pixels: [])),
            ("negative damage size", GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: UInt32(bitPattern: -5), height: 1), pixels: [0, 0, 0, 0])),
            ("pixels shorter than the size", GuiEncode.damage(window: 1, GuiRect(x: 0, y: 0, width: 4, height: 4), pixels: [1, 2, 3, 4])),
            ("damage of an unknown window", GuiEncode.damage(window: 77, one, pixels: [1, 2, 3, 4])),
            ("a screen-sized window beyond the limits", GuiEncode.create(window: 2, GuiRect(x: 0, y: 0, width: 20000, height: 20000))),
            ("windows too large together", GuiEncode.create(window: 5, GuiRect(x: 0, y: 0, width: 16384, height: 6144))
                + GuiEncode.create(window: 6, GuiRect(x: 0, y: 0, width: 16384, height: 6144))),
            ("unknown type", GuiMessageWriter(rawType: 4242, window: 1, claimedLength: 0).bytes),
            ("a host-only type", GuiEncode.focus(window: 1, focused: true)),
            ("a title over the limit", GuiEncode.title(window: 1, String(repeating: "A", count: 4096))),
            ("truncated, then EOF", Array(GuiEncode.create(window: 3, one).prefix(20))),
        ]
        for (i, (what, bytes)) in attacks.enumerated() {
            let name = "att\(i)"
            let d = try gui.attach(name, label: "red", color: 0xcc0000)
            _ = try d.handshake()
            showWindow(d, at: GuiRect(x: 20, y: 500, width: 20, height: 10), title: what)
            XCTAssert(screen.waitUntil("\(what): the window is up") { screen.window(named: "[\(name)] \(what)")?.mapped == true })
            d.send(bytes)
            if what.hasPrefix("truncated") { shutdown(d.fd, Int32(SHUT_WR)) }
            XCTAssert(d.waitForClose(), "\(what): the channel is closed")
            XCTAssert(screen.waitUntil("\(what): its window is gone") { screen.window(named: "[\(name)] \(what)") == nil })
            let mail = try XCTUnwrap(screen.window(named: "[personal] mail"), what)
            assertFrame(mail, color: Self.green)
        }
        XCTAssertEqual(gui.host.logs.filter { $0.contains("GUI channel closed") }.count, attacks.count, "\(gui.host.logs)")
    }

    func testAttachRefusesBadNamesDuplicatesAndClosedDescriptors() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        _ = work
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { closeDescriptor(pair[0]); closeDescriptor(pair[1]) }
        XCTAssertEqual(gui.attachError("work", fd: pair[0]).0, ODY_E_EXISTS.rawValue)
        XCTAssertEqual(gui.attachError("[vault]", fd: pair[0]).0, ODY_E_INVALID.rawValue)
        XCTAssertEqual(gui.attachError("", fd: pair[0]).0, ODY_E_INVALID.rawValue)
        XCTAssertEqual(gui.attachError("ok", fd: 987_654).0, ODY_E_INVALID.rawValue)
    }
}

/// The title colour FrameGeometry picks (restated: the plugin's types are internal to its library).
func titleTextColor(_ rgb: UInt32) -> UInt32 {
    let r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff
    return (r * 299 + g * 587 + b * 114) / 1000 >= 128 ? 0x000000 : 0xffffff
}

final class GuiDisplayLossTests: XCTestCase {
    /// Xlib's default is exit() when the X server goes: inside odysseyd that
    /// would take the host down. The daemon closes the domains' channels instead.
    func testLosingTheXServerClosesTheChannelsAndNothingElse() throws {
        let screen = try XvfbScreen()
        let gui = try GuiPlugin(config: ["display": screen.displayName])
        let work = try gui.attach("work", label: "blue", color: GuiDaemonTests.blue)
        _ = try work.handshake()
        work.send(GuiEncode.create(window: 1, GuiRect(x: 0, y: 0, width: 10, height: 10)) + GuiEncode.map(window: 1))
        XCTAssert(screen.waitUntil("the window is up") { screen.window(named: "[work] ")?.mapped == true })
        screen.stop()   // the X server dies under the daemon
        XCTAssert(work.waitForClose(), "work's channel is closed")
        XCTAssert(gui.host.logs.contains { $0.contains("connection to the X display was lost") }, "\(gui.host.logs)")
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        defer { closeDescriptor(pair[0]); closeDescriptor(pair[1]) }
        XCTAssertEqual(gui.attachError("personal", fd: pair[0]).0, ODY_E_STATE.rawValue, "a dead instance refuses new domains")
        gui.close()
    }
}

extension GuiDaemonTests {
    /// A window placed above the screen would hide its title bar and leave pixels that may
    /// imitate another domain's frame: the daemon moves it on screen and tells the domain.
    func testATitledWindowCannotHideItsTitleBarOffScreen() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        _ = try work.handshake()
        showWindow(work, at: GuiRect(x: -50, y: -30, width: 100, height: 40), title: "hidden bar")
        let ack = try work.readMessage()
        XCTAssertEqual(ack.type, GuiMessageType.configureAck.rawValue)
        var r = LittleEndianReader(ack.body[...])
        XCTAssertEqual([r.i32(), r.i32()], [0, 0], "the domain learns where its window went")
        XCTAssert(screen.waitUntil("the window is up") { screen.window(named: "[work] hidden bar")?.mapped == true })
        let w = try XCTUnwrap(screen.window(named: "[work] hidden bar"))
        XCTAssertEqual([w.x, w.y], [0, 0])
        assertFrame(w, color: Self.blue)
    }

    /// Input reaches the domain whose window X delivered it to, in that window's coordinates;
    /// another domain hears nothing.
    func testInputGoesToTheWindowsDomainInItsCoordinates() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/xdotool") else {
            throw XCTSkip("xdotool is not installed (scripts/install-deps installs it)")
        }
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        let personal = try gui.attach("personal", label: "green", color: Self.green)
        _ = try work.handshake(); _ = try personal.handshake()
        showWindow(work, at: GuiRect(x: 100, y: 100, width: 80, height: 40), title: "w")
        showWindow(personal, at: GuiRect(x: 400, y: 100, width: 80, height: 40), title: "p")
        XCTAssert(screen.waitUntil("both windows are up") {
            screen.window(named: "[work] w")?.mapped == true && screen.window(named: "[personal] p")?.mapped == true
        })
        let xdotool = Process()
        xdotool.executableURL = URL(fileURLWithPath: "/usr/bin/xdotool")
        xdotool.arguments = ["mousemove", "\(100 + 2 + 5)", "\(100 + 18 + 7)", "click", "1"]
        xdotool.environment = ["DISPLAY": screen.displayName]
        try xdotool.run()
        xdotool.waitUntilExit()
        XCTAssertEqual(xdotool.terminationStatus, 0)
        // Motion may come first; the press carries the click's position inside the content.
        var press: (type: UInt32, window: UInt32, body: [UInt8])?
        for _ in 0..<20 {
            let m = try work.readMessage()
            if m.type == GuiMessageType.button.rawValue { press = m; break }
        }
        let p = try XCTUnwrap(press, "work received the click")
        XCTAssertEqual(p.window, 1)
        var r = LittleEndianReader(p.body[...])
        XCTAssertEqual([r.u32(), UInt32(bitPattern: r.i32()), UInt32(bitPattern: r.i32())], [1, 5, 7], "pressed, at (5,7) of the content")
        XCTAssertThrowsError(try personal.readMessage(timeout: 300), "personal hears nothing of work's click")
    }
}

extension GuiDaemonTests {
    /// Covered and uncovered again (X discards what was under a window), a window comes back
    /// whole: frame, title and the domain's pixels, redrawn by the daemon from its copy.
    func testAWindowUncoveredIsRedrawnWhole() throws {
        let work = try gui.attach("work", label: "blue", color: Self.blue)
        let personal = try gui.attach("personal", label: "green", color: Self.green)
        _ = try work.handshake(); _ = try personal.handshake()
        let r = GuiRect(x: 100, y: 100, width: 50, height: 30)
        showWindow(work, at: r, title: "below")
        XCTAssert(screen.waitUntil("work's window is up") { screen.window(named: "[work] below")?.mapped == true })
        showWindow(personal, at: GuiRect(x: 90, y: 90, width: 100, height: 80), title: "above")
        XCTAssert(screen.waitUntil("personal's window covers it") { screen.window(named: "[personal] above")?.mapped == true })
        // (120,120) is pixel (28,12) of personal's content, (18,2) of work's: they differ.
        let personalPixel = Self.rgb(Self.pattern(width: 100, height: 80), 12 * 100 + 28)
        XCTAssert(screen.waitUntil("work's window is covered") { screen.pixels(x: 120, y: 120, width: 1, height: 1).first?.first == personalPixel })
        personal.send(GuiEncode.unmap(window: 1))
        let expected = Self.pattern(width: 50, height: 30)
        XCTAssert(screen.waitUntil("work's window is whole again") {
            let px = screen.pixels(x: 102, y: 118, width: 50, height: 30)
            return px.count == 30 && (0..<30).allSatisfy { y in (0..<50).allSatisfy { x in px[y][x] == Self.rgb(expected, y * 50 + x) } }
        })
        assertFrame(try XCTUnwrap(screen.window(named: "[work] below")), color: Self.blue)
    }
}
