// What a domain may tell the trusted GUI, once a validator admitted it. No
// value here came from a domain without passing GuiValidator: sizes are
// inside the limits, windows exist, text is sanitised, damage is clipped to
// its window.

public struct GuiRect: Equatable, Sendable {
    public var x: Int32, y: Int32, width: UInt32, height: UInt32
    public init(x: Int32, y: Int32, width: UInt32, height: UInt32) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
}

/// WM size hints, each already bounded by the window limits (0 = unset).
public struct GuiSizeHints: Equatable, Sendable {
    public var minWidth: UInt32, minHeight: UInt32, maxWidth: UInt32, maxHeight: UInt32
    public var widthIncrement: UInt32, heightIncrement: UInt32, baseWidth: UInt32, baseHeight: UInt32
}

public enum DomainMessage: Equatable, Sendable {
    /// The session's version: min of both minors, same major.
    case hello(minor: UInt32)
    case create(window: UInt32, rect: GuiRect, parent: UInt32, overrideRedirect: Bool)
    case destroy(window: UInt32)
    case map(window: UInt32, transientFor: UInt32, overrideRedirect: Bool)
    case unmap(window: UInt32)
    case configure(window: UInt32, rect: GuiRect, overrideRedirect: Bool)
    /// Printable text only; the daemon adds the `[domain] ` prefix itself.
    case title(window: UInt32, text: String)
    case windowClass(window: UInt32, resClass: String, resName: String)
    case hints(window: UInt32, hints: GuiSizeHints)
    /// `rect` lies inside the window (window coordinates); `pixels` holds
    /// exactly width*height 32-bit pixels (B, G, R, x in memory) for it.
    case damage(window: UInt32, rect: GuiRect, pixels: [UInt8])
    /// Damage that fell entirely outside its window: nothing to draw.
    case damageOutside(window: UInt32)
    case clipboardData(bytes: [UInt8])
    /// Clipboard data over the configured limit: refused, logged, the
    /// channel stays open (Qubes' "one byte over" signal).
    case clipboardTooLarge(size: Int)
}
