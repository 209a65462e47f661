// Bounds on everything a domain may ask of the trusted GUI. Defaults follow
// Qubes' gui-daemon (qubes-gui-protocol.h 1.8: windows up to 16384x6144,
// clipboard 64000 bytes by default and 256000 at most, titles of 128 bytes,
// WM class strings of 64); the window count and inline damage size are ours.

public struct GuiLimits: Equatable, Sendable {
    /// Qubes' MAX_WINDOW_WIDTH / MAX_WINDOW_HEIGHT. Both fit X11's 16-bit
    /// sizes, and +-these as positions fit X11's 16-bit signed coordinates.
    public var maxWindowWidth: UInt32 = 16384
    public var maxWindowHeight: UInt32 = 6144
    /// Live windows per domain (created and not yet destroyed).
    public var maxWindows: Int = 1024
    /// Bytes of a window title (UTF-8) and of each WM class string.
    public var maxTitleBytes: Int = 128
    public var maxClassBytes: Int = 64
    /// The clipboard a domain may hand over; larger data is refused (not a
    /// protocol error) up to clipboardHardMax, beyond which the message is
    /// malformed (Qubes' 256000 + 1 rule).
    public var maxClipboardBytes: Int = 64000
    public static let clipboardHardMax = 256_001
    /// The pixels of all of a domain's live windows together (4 bytes each):
    /// the trusted side keeps a copy of each window's pixels, so a domain must
    /// not make it hold unbounded memory. 512 MiB holds one window of the
    /// largest size (16384x6144, 384 MiB) or sixty full-HD ones.
    public var maxPixelBytes: Int = 512 << 20
    /// Pixels carried inline in one damage message (32 bits each); 1920x1080
    /// is 8.3 MB. Larger updates are split by the agent.
    public var maxDamageBytes: Int = 32 << 20

    public init() {}

    /// Refuses limits that would let a domain past what X11 or memory allows.
    public func validated() throws(GuiProtocolError) -> GuiLimits {
        guard (1...16384).contains(maxWindowWidth), (1...16384).contains(maxWindowHeight) else {
            throw GuiProtocolError(.badValue, "limits: window sizes must be 1...16384 (X11 coordinates are 16-bit)")
        }
        guard (1...65536).contains(maxWindows) else { throw GuiProtocolError(.badValue, "limits: max windows must be 1...65536") }
        guard (1...4096).contains(maxTitleBytes), (1...1024).contains(maxClassBytes) else {
            throw GuiProtocolError(.badValue, "limits: title 1...4096 bytes, class 1...1024 bytes")
        }
        guard (256...256_000).contains(maxClipboardBytes) else {
            throw GuiProtocolError(.badValue, "limits: clipboard must be 256...256000 bytes (Qubes' range)")
        }
        guard (1 << 20...(64 << 30)).contains(maxPixelBytes) else { throw GuiProtocolError(.badValue, "limits: pixel memory 1 MiB...64 GiB") }
        guard (4...(256 << 20)).contains(maxDamageBytes) else { throw GuiProtocolError(.badValue, "limits: damage 4 B...256 MiB") }
        return self
    }
}
