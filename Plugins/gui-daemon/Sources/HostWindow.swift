// One host X window for one domain window: the daemon's frame and title
// around a backing copy of the domain's pixels. Called on the event-loop
// thread only (Xlib is used from that thread alone).
import CX11
import Glibc
import GuiProtocol

final class HostWindow {
    let xid: Window
    let domainWindow: UInt32
    private let x: XContext
    private let domain: String
    private let color: UInt32
    private(set) var rect: GuiRect
    private(set) var titled: Bool
    private(set) var title: String
    /// The domain's pixels, rect.width x rect.height, 32 bits each (B G R x);
    /// empty until the first damage, so a window never drawn costs nothing.
    private var pixels: [UInt8] = []

    /// `overrideRedirect` is what the domain asked; the screen-size rule decides.
    init(x: XContext, domain: String, color: UInt32, domainWindow: UInt32, rect: GuiRect, overrideRedirect: Bool) {
        self.x = x
        self.domain = domain
        self.color = color
        self.domainWindow = domainWindow
        self.rect = rect
        let keepsOR = overrideRedirect && FrameGeometry.keepsOverrideRedirect(
            width: rect.width, height: rect.height, screenWidth: x.screenWidth, screenHeight: x.screenHeight)
        titled = !keepsOR
        title = FrameGeometry.title(domain: domain, "")
        let outer = HostWindow.outer(rect, titled: titled, x)
        var attrs = XSetWindowAttributes()
        attrs.background_pixel = 0   // black until the domain draws; the frame is drawn over it
        attrs.border_pixel = UInt(color)
        attrs.override_redirect = keepsOR ? 1 : 0
        attrs.event_mask = ExposureMask | KeyPressMask | KeyReleaseMask | ButtonPressMask | ButtonReleaseMask
            | PointerMotionMask | FocusChangeMask | StructureNotifyMask
        xid = XCreateWindow(x.display, x.root, outer.x, outer.y, outer.width, outer.height, 0,
                            x.depth, UInt32(InputOutput), x.visual,
                            UInt(CWBackPixel | CWBorderPixel | CWOverrideRedirect | CWEventMask), &attrs)
        x.setProtocols(xid)
        setTitle("")
    }

    /// The host window's geometry for a domain rectangle (titled windows forced on screen).
    private static func outer(_ r: GuiRect, titled: Bool, _ x: XContext) -> (x: Int32, y: Int32, width: UInt32, height: UInt32) {
        let i = FrameGeometry.insets(titled: titled)
        let w = r.width + UInt32(i.left + i.right), h = r.height + UInt32(i.top + i.bottom)
        guard titled else { return (r.x, r.y, w, h) }
        let p = FrameGeometry.onScreen(x: r.x, y: r.y, outerWidth: w, outerHeight: h, screenWidth: x.screenWidth, screenHeight: x.screenHeight)
        return (p.x, p.y, w, h)
    }

    /// Where the host placed the window, in the domain's terms (for configureAck).
    var placed: GuiRect {
        let o = HostWindow.outer(rect, titled: titled, x)
        return GuiRect(x: o.x, y: o.y, width: rect.width, height: rect.height)
    }

    func map() { XMapRaised(x.display, xid) }
    func unmap() { XUnmapWindow(x.display, xid) }
    func destroy() { XDestroyWindow(x.display, xid) }

    func configure(_ r: GuiRect) {
        if r.width != rect.width || r.height != rect.height { pixels = [] }
        rect = r
        let outer = HostWindow.outer(r, titled: titled, x)
        XMoveResizeWindow(x.display, xid, outer.x, outer.y, outer.width, outer.height)
        redraw()
    }

    func setTitle(_ text: String) {
        title = FrameGeometry.title(domain: domain, text)
        x.setName(xid, title)
        drawFrame()
    }

    func setClass(_ resClass: String, _ resName: String) {
        // Prefixed like Qubes ("work:XTerm"), so a desktop never groups it with a host program.
        x.setClass(xid, resClass: "\(domain):\(resClass)", resName: "\(domain):\(resName)")
    }

    /// `r` lies inside the window and `data` holds exactly its pixels (the validator's promise).
    func damage(_ r: GuiRect, _ data: [UInt8]) {
        let stride = Int(rect.width) * 4, rowBytes = Int(r.width) * 4
        guard Int(r.x) + Int(r.width) <= Int(rect.width), Int(r.y) + Int(r.height) <= Int(rect.height),
              data.count == rowBytes * Int(r.height) else { return }
        if pixels.isEmpty { pixels = [UInt8](repeating: 0, count: Int(rect.width) * Int(rect.height) * 4) }
        pixels.withUnsafeMutableBytes { dst in
            data.withUnsafeBytes { src in
                for row in 0..<Int(r.height) {
                    (dst.baseAddress! + (Int(r.y) + row) * stride + Int(r.x) * 4)
                        .copyMemory(from: src.baseAddress! + row * rowBytes, byteCount: rowBytes)
                }
            }
        }
        putPixels(r)
    }

    func redraw() {
        drawFrame()
        putPixels(GuiRect(x: 0, y: 0, width: rect.width, height: rect.height))
    }

    /// The frame in the label colour and, on titled windows, the title.
    private func drawFrame() {
        let i = FrameGeometry.insets(titled: titled)
        let w = rect.width + UInt32(i.left + i.right), h = rect.height + UInt32(i.top + i.bottom)
        XSetForeground(x.display, x.gc, UInt(color))
        XFillRectangle(x.display, xid, x.gc, 0, 0, w, UInt32(i.top))
        XFillRectangle(x.display, xid, x.gc, 0, 0, UInt32(i.left), h)
        XFillRectangle(x.display, xid, x.gc, Int32(w) - i.right, 0, UInt32(i.right), h)
        XFillRectangle(x.display, xid, x.gc, 0, Int32(h) - i.bottom, w, UInt32(i.bottom))
        guard titled, x.hasFont else { return }
        // Text is clipped to the title bar: however long, it cannot reach the pixels.
        var clip = XRectangle(x: 0, y: 0, width: UInt16(clamping: w), height: UInt16(i.top))
        XSetClipRectangles(x.display, x.gc, 0, 0, &clip, 1, Unsorted)
        XSetForeground(x.display, x.gc, UInt(FrameGeometry.textColor(on: color)))
        let text = FrameGeometry.drawable(title).map { CChar(bitPattern: $0) }
        XDrawString(x.display, xid, x.gc, 4, i.top - 5, text, Int32(text.count))
        XSetClipMask(x.display, x.gc, 0)
    }

    /// Copies part of the backing pixels to the screen, inside the frame.
    private func putPixels(_ r: GuiRect) {
        guard r.width > 0, r.height > 0, !pixels.isEmpty else { return }
        let i = FrameGeometry.insets(titled: titled)
        pixels.withUnsafeMutableBytes { buf in
            var image = XImage()
            image.width = Int32(rect.width); image.height = Int32(rect.height)
            image.format = ZPixmap
            image.data = buf.baseAddress!.assumingMemoryBound(to: CChar.self)
            image.byte_order = LSBFirst; image.bitmap_unit = 32; image.bitmap_bit_order = LSBFirst; image.bitmap_pad = 32
            image.depth = x.depth; image.bytes_per_line = Int32(rect.width) * 4; image.bits_per_pixel = 32
            image.red_mask = 0xff0000; image.green_mask = 0xff00; image.blue_mask = 0xff
            guard XInitImage(&image) != 0 else { return }
            XPutImage(x.display, xid, x.gc, &image, r.x, r.y, i.left + r.x, i.top + r.y, r.width, r.height)
        }
    }
}
