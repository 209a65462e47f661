// A private host screen for one test: Xvfb on a free display number,
// 1280x1024x24, killed at the end. Tests read its pixels with XGetImage on
// their own connection, as a person would see them.
import CX11
import Foundation
import XCTest

final class XvfbScreen {
    static let width = 1280, height = 1024
    let displayName: String
    let display: OpaquePointer
    private let process: Process
    private let lifeline = Pipe()

    /// Skips (saying why) where Xvfb is not installed: scripts/install-deps installs it.
    init() throws {
        let xvfb = "/usr/bin/Xvfb"
        guard FileManager.default.isExecutableFile(atPath: xvfb) else {
            throw XCTSkip("Xvfb is not installed (apt-get install xvfb, or scripts/install-deps): the gui-daemon needs a screen")
        }
        // A display number no server holds: neither its lock file nor its socket exists.
        var number = 0
        for n in 120..<400 where !FileManager.default.fileExists(atPath: "/tmp/.X\(n)-lock")
            && !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(n)") { number = n; break }
        guard number != 0 else { throw XCTSkip("no free X display number in 120..399") }
        displayName = ":\(number)"
        // The daemon destroys windows while the test lists them: an error about a
        // vanished window is expected, and Xlib's default handler would exit.
        XSetErrorHandler { _, _ in 0 }
        // Xvfb runs under a small sh that kills it when our end of its stdin
        // closes: at stop(), or when this test process dies in any way, so a
        // crashed test never leaves a server behind. (The arguments are ours:
        // a number and fixed words; nothing from a domain reaches the shell.)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" \"$@\" & x=$!; read _; kill $x; wait $x", xvfb,
                             displayName, "-screen", "0", "\(Self.width)x\(Self.height)x24", "-nolisten", "tcp", "-noreset"]
        process.standardInput = lifeline
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when it accepts a connection (a deadline, not a timing assumption).
        let deadline = Date().addingTimeInterval(30)
        var d: OpaquePointer?
        while d == nil, Date() < deadline, process.isRunning {
            d = XOpenDisplay(displayName)
            if d == nil { usleep(20_000) }
        }
        guard let d else {
            try? lifeline.fileHandleForWriting.close()
            throw NSError(domain: "Xvfb", code: 1, userInfo: [NSLocalizedDescriptionKey: "Xvfb \(displayName) did not accept connections within 30 s"])
        }
        display = d
    }

    func stop() {
        XCloseDisplay(display)
        try? lifeline.fileHandleForWriting.close()   // sh kills Xvfb and waits for it
        process.waitUntilExit()
    }

    /// True if the server has the core "fixed" font the daemon draws titles with.
    var hasFixedFont: Bool {
        guard let f = XLoadQueryFont(display, "fixed") else { return false }
        XFreeFont(display, f)
        return true
    }

    struct TopWindow { let id: Window; let name: String; let x: Int32, y: Int32, width: Int32, height: Int32; let mapped: Bool; let overrideRedirect: Bool }

    /// The root's children with their names (WM_NAME) and geometry.
    func windows() -> [TopWindow] {
        XSync(display, 0)
        var root: Window = 0, parent: Window = 0
        var children: UnsafeMutablePointer<Window>?
        var count: UInt32 = 0
        guard XQueryTree(display, XDefaultRootWindow(display), &root, &parent, &children, &count) != 0, let children else { return [] }
        defer { XFree(children) }
        var out: [TopWindow] = []
        for i in 0..<Int(count) {
            let w = children[i]
            var namePtr: UnsafeMutablePointer<CChar>?
            var name = ""
            if XFetchName(display, w, &namePtr) != 0, let namePtr { name = String(cString: namePtr); XFree(namePtr) }
            var a = XWindowAttributes()
            guard XGetWindowAttributes(display, w, &a) != 0 else { continue }
            out.append(TopWindow(id: w, name: name, x: a.x, y: a.y, width: a.width, height: a.height,
                                 mapped: a.map_state == IsViewable, overrideRedirect: a.override_redirect != 0))
        }
        return out
    }

    func window(named name: String) -> TopWindow? { windows().first { $0.name == name } }

    /// The screen's pixels in a rectangle, 0xRRGGBB, row by row.
    func pixels(x: Int32, y: Int32, width: Int32, height: Int32) -> [[UInt32]] {
        XSync(display, 0)
        guard let image = XGetImage(display, XDefaultRootWindow(display), x, y, UInt32(width), UInt32(height), ~0, ZPixmap) else { return [] }
        defer { _ = image.pointee.f.destroy_image(image) }
        let stride = Int(image.pointee.bytes_per_line)
        let raw = UnsafeRawPointer(image.pointee.data!)
        return (0..<Int(height)).map { row in
            (0..<Int(width)).map { col in raw.loadUnaligned(fromByteOffset: row * stride + col * 4, as: UInt32.self) & 0xffffff }
        }
    }

    /// Waits (up to 20 s) until `condition` holds; the daemon draws on its own thread.
    func waitUntil(_ what: String, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        XCTFail("timed out waiting until \(what)")
        return false
    }
}
