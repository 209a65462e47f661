// Messages the trusted side sends to a domain (and the encoders a domain's
// agent, or a test playing one, uses toward the host). Bodies are fixed
// little-endian u32 fields, as the validators expect them.

public enum GuiEncode {
    public static func hello(major: UInt32 = GuiVersion.major, minor: UInt32 = GuiVersion.minor) -> [UInt8] {
        var m = GuiMessageWriter(.hello); m.put(major); m.put(minor); return m.message
    }

    // MARK: host -> domain

    /// The host screen's size, sent once after hello.
    public static func screen(width: UInt32, height: UInt32) -> [UInt8] {
        var m = GuiMessageWriter(.screen); m.put(width); m.put(height); return m.message
    }
    public static func key(window: UInt32, pressed: Bool, x: Int32, y: Int32, state: UInt32, keycode: UInt32) -> [UInt8] {
        var m = GuiMessageWriter(.key, window: window)
        m.put(pressed ? 1 : 0 as UInt32); m.put(x); m.put(y); m.put(state); m.put(keycode); return m.message
    }
    public static func button(window: UInt32, pressed: Bool, x: Int32, y: Int32, state: UInt32, button: UInt32) -> [UInt8] {
        var m = GuiMessageWriter(.button, window: window)
        m.put(pressed ? 1 : 0 as UInt32); m.put(x); m.put(y); m.put(state); m.put(button); return m.message
    }
    public static func motion(window: UInt32, x: Int32, y: Int32, state: UInt32) -> [UInt8] {
        var m = GuiMessageWriter(.motion, window: window); m.put(x); m.put(y); m.put(state); return m.message
    }
    public static func focus(window: UInt32, focused: Bool) -> [UInt8] {
        var m = GuiMessageWriter(.focus, window: window); m.put(focused ? 1 : 0 as UInt32); return m.message
    }
    /// The user asked to close the window (the frame's close button, WM_DELETE_WINDOW).
    public static func close(window: UInt32) -> [UInt8] { GuiMessageWriter(.close, window: window).message }
    /// Ctrl-Shift-C in this domain: send your clipboard.
    public static func clipboardRequest(window: UInt32) -> [UInt8] { GuiMessageWriter(.clipboardRequest, window: window).message }
    /// Ctrl-Shift-V, allowed by policy: this is your clipboard now.
    public static func clipboardPaste(window: UInt32, _ data: [UInt8]) -> [UInt8] {
        var m = GuiMessageWriter(.clipboardPaste, window: window); m.put(bytes: data); return m.message
    }
    public static func destroyAck(window: UInt32) -> [UInt8] { GuiMessageWriter(.destroyAck, window: window).message }
    /// Where the host placed (or the user moved) a window.
    public static func configureAck(window: UInt32, _ r: GuiRect) -> [UInt8] {
        var m = GuiMessageWriter(.configureAck, window: window); m.put(r.x); m.put(r.y); m.put(r.width); m.put(r.height); return m.message
    }

    // MARK: domain -> host

    public static func create(window: UInt32, _ r: GuiRect, parent: UInt32 = 0, overrideRedirect: Bool = false) -> [UInt8] {
        var m = GuiMessageWriter(.create, window: window)
        m.put(r.x); m.put(r.y); m.put(r.width); m.put(r.height); m.put(parent); m.put(overrideRedirect ? 1 : 0 as UInt32)
        return m.message
    }
    public static func destroy(window: UInt32) -> [UInt8] { GuiMessageWriter(.destroy, window: window).message }
    public static func map(window: UInt32, transientFor: UInt32 = 0, overrideRedirect: Bool = false) -> [UInt8] {
        var m = GuiMessageWriter(.map, window: window); m.put(transientFor); m.put(overrideRedirect ? 1 : 0 as UInt32); return m.message
    }
    public static func unmap(window: UInt32) -> [UInt8] { GuiMessageWriter(.unmap, window: window).message }
    public static func configure(window: UInt32, _ r: GuiRect, overrideRedirect: Bool = false) -> [UInt8] {
        var m = GuiMessageWriter(.configure, window: window)
        m.put(r.x); m.put(r.y); m.put(r.width); m.put(r.height); m.put(overrideRedirect ? 1 : 0 as UInt32); return m.message
    }
    public static func title(window: UInt32, _ text: String) -> [UInt8] {
        var m = GuiMessageWriter(.title, window: window); m.put(bytes: Array(text.utf8)); return m.message
    }
    public static func windowClass(window: UInt32, resClass: String, resName: String) -> [UInt8] {
        var m = GuiMessageWriter(.windowClass, window: window)
        m.put(bytes: Array(resClass.utf8)); m.put(bytes: [0]); m.put(bytes: Array(resName.utf8)); return m.message
    }
    public static func hints(window: UInt32, _ h: GuiSizeHints) -> [UInt8] {
        var m = GuiMessageWriter(.hints, window: window)
        for v in [h.minWidth, h.minHeight, h.maxWidth, h.maxHeight, h.widthIncrement, h.heightIncrement, h.baseWidth, h.baseHeight] { m.put(v) }
        m.put(0 as UInt32)   // reserved flags word (36 bytes: room for one more hint)
        return m.message
    }
    /// `pixels`: width*height 32-bit pixels, B G R x in memory.
    public static func damage(window: UInt32, _ r: GuiRect, pixels: [UInt8]) -> [UInt8] {
        var m = GuiMessageWriter(.damage, window: window)
        m.put(r.x); m.put(r.y); m.put(r.width); m.put(r.height); m.put(bytes: pixels); return m.message
    }
    public static func clipboardData(_ data: [UInt8]) -> [UInt8] {
        var m = GuiMessageWriter(.clipboardData); m.put(bytes: data); return m.message
    }
}
