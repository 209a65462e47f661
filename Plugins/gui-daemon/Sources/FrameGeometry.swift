// What the trusted side draws around a domain's pixels, as plain numbers:
// kept apart from Xlib so the rules are readable (and testable) alone.
//
//   normal window             override-redirect window (menus, tooltips)
//   +------------------+      +--------+
//   |[work] title      |  18  |pixels  |  a 2 px border, no title bar
//   |+----------------+|      +--------+
//   ||domain's pixels ||
//   |+----------------+|  2
//   +------------------+
//
// The domain's pixels go only inside the inner rectangle: the frame and the
// "[name] " prefix are the daemon's alone.

enum FrameGeometry {
    static let border: Int32 = 2
    static let titleHeight: Int32 = 18

    /// Space the frame takes on each side of the domain's pixels.
    struct Insets: Equatable { let left: Int32, top: Int32, right: Int32, bottom: Int32 }

    static func insets(titled: Bool) -> Insets {
        Insets(left: border, top: titled ? titleHeight : border, right: border, bottom: border)
    }

    /// Qubes' rule: an override-redirect window covering 90% of the screen
    /// or more would hide everything else unframed, so it becomes a normal
    /// (titled) window.
    static func keepsOverrideRedirect(width: UInt32, height: UInt32, screenWidth: UInt32, screenHeight: UInt32) -> Bool {
        UInt64(width) * UInt64(height) * 10 < UInt64(screenWidth) * UInt64(screenHeight) * 9
    }

    /// Where a titled window goes: on screen, so that its title bar (and the
    /// "[name]" at its left end) cannot be pushed out of sight while its
    /// pixels, maybe imitating another domain's frame, stay visible. Whole
    /// windows are kept on screen when they fit, else pinned to the top left.
    static func onScreen(x: Int32, y: Int32, outerWidth: UInt32, outerHeight: UInt32,
                         screenWidth: UInt32, screenHeight: UInt32) -> (x: Int32, y: Int32) {
        let maxX = max(0, Int64(screenWidth) - Int64(outerWidth)), maxY = max(0, Int64(screenHeight) - Int64(outerHeight))
        return (Int32(min(max(Int64(x), 0), maxX)), Int32(min(max(Int64(y), 0), maxY)))
    }

    /// The title every window of `domain` shows; the prefix is ours.
    static func title(domain: String, _ text: String) -> String { "[\(domain)] \(text)" }

    /// What core X fonts can draw of a title: ASCII, others as '?'. The full
    /// UTF-8 title goes into _NET_WM_NAME.
    static func drawable(_ title: String) -> [UInt8] {
        title.unicodeScalars.map { $0.isASCII ? UInt8($0.value) : UInt8(ascii: "?") }
    }

    /// Black text on light label colours, white on dark ones.
    static func textColor(on rgb: UInt32) -> UInt32 {
        let r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff
        return (r * 299 + g * 587 + b * 114) / 1000 >= 128 ? 0x000000 : 0xffffff
    }
}
