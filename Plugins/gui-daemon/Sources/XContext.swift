// The host's X display as the daemon uses it: one connection, one GC, the
// atoms for names and the close protocol. Open refuses displays whose
// pixels are not 24-bit TrueColor in 32-bit words (every Xorg and Xvfb
// default): that is the format domains send.
import CX11
import Glibc

final class XContext {
    let display: OpaquePointer
    let root: Window
    let visual: UnsafeMutablePointer<Visual>
    let depth: Int32
    let gc: GC
    let screenWidth: UInt32, screenHeight: UInt32
    let hasFont: Bool
    /// Set by Xlib's I/O-error exit handler when the connection to the X
    /// server is lost; from then on the display is dead and never used again.
    private let lostFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var lost: Bool { lostFlag.pointee != 0 }
    private let wmDelete: Atom, wmProtocols: Atom, netWmName: Atom, utf8String: Atom

    init(displayName: String) throws(GuiDaemonError) {
        // Xlib's default handlers call exit(): inside odysseyd that would stop
        // the host. Protocol errors (a window another client destroyed) are
        // ignored; they concern one window, and the next event resyncs.
        XSetErrorHandler { _, _ in 0 }
        // Xlib's default I/O-error handler prints and exits; ours returns, and
        // the per-display exit handler below records the loss instead.
        XSetIOErrorHandler { _ in 0 }
        guard let d = XOpenDisplay(displayName.isEmpty ? nil : displayName) else {
            throw GuiDaemonError("cannot open X display '\(displayName.isEmpty ? "$DISPLAY" : displayName)' (set [gui.x11] display, or DISPLAY)")
        }
        let screen = XDefaultScreen(d)
        let visual = XDefaultVisual(d, screen)!
        let depth = XDefaultDepth(d, screen)
        guard depth == 24, visual.pointee.red_mask == 0xff0000, visual.pointee.green_mask == 0xff00, visual.pointee.blue_mask == 0xff else {
            XCloseDisplay(d)
            throw GuiDaemonError("display '\(displayName)' has depth \(depth): the gui-daemon draws 24-bit TrueColor only (Xvfb: -screen 0 WxHx24)")
        }
        display = d
        lostFlag.initialize(to: 0)
        // Losing the X server would otherwise exit() the whole host: instead
        // Xlib returns and the daemon closes every domain's channel (GuiDaemon.loop).
        XSetIOErrorExitHandler(d, { _, flag in flag?.assumingMemoryBound(to: Int32.self).pointee = 1 }, UnsafeMutableRawPointer(lostFlag))
        root = XRootWindow(d, screen)
        self.visual = visual
        self.depth = depth
        screenWidth = UInt32(XDisplayWidth(d, screen))
        screenHeight = UInt32(XDisplayHeight(d, screen))
        gc = XCreateGC(d, root, 0, nil)
        // The server's built-in "fixed" font draws titles; without it the
        // frames are still drawn and the title is still in _NET_WM_NAME.
        if let font = XLoadQueryFont(d, "fixed") { XSetFont(d, gc, font.pointee.fid); hasFont = true } else { hasFont = false }
        wmDelete = XInternAtom(d, "WM_DELETE_WINDOW", 0)
        wmProtocols = XInternAtom(d, "WM_PROTOCOLS", 0)
        netWmName = XInternAtom(d, "_NET_WM_NAME", 0)
        utf8String = XInternAtom(d, "UTF8_STRING", 0)
    }

    var connectionFd: Int32 { XConnectionNumber(display) }

    /// Closes the connection (a lost one is left alone: Xlib already gave up on it).
    func close() { if !lost { XCloseDisplay(display) } }

    func setProtocols(_ w: Window) {
        var atom = wmDelete
        XSetWMProtocols(display, w, &atom, 1)
    }

    func isDeleteRequest(_ e: XClientMessageEvent) -> Bool {
        e.message_type == wmProtocols && Atom(e.data.l.0) == wmDelete
    }

    /// WM_NAME (Latin-1 view, for old tools) and _NET_WM_NAME (UTF-8).
    func setName(_ w: Window, _ name: String) {
        let ascii = FrameGeometry.drawable(name).map { CChar(bitPattern: $0) } + [0]
        XStoreName(display, w, ascii)
        let utf8 = Array(name.utf8)
        XChangeProperty(display, w, netWmName, utf8String, 8, PropModeReplace, utf8, Int32(utf8.count))
    }

    func setClass(_ w: Window, resClass: String, resName: String) {
        resClass.withCString { c in
            resName.withCString { n in
                var hint = XClassHint(res_name: UnsafeMutablePointer(mutating: n), res_class: UnsafeMutablePointer(mutating: c))
                XSetClassHint(display, w, &hint)
            }
        }
    }
}

/// The gui-daemon's one error: a sentence for the host's log and ody_error.
struct GuiDaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
