// The one error of the GUI protocol: what was wrong, about which window, in
// words a person debugging an agent can act on. Any error from a domain's
// stream closes that domain's GUI channel (and nothing else).

public struct GuiProtocolError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case unknownType = "unknown message type"
        case wrongDirection = "message type not allowed in this direction"
        case badLength = "bad message length"
        case versionMismatch = "protocol version mismatch"
        case helloExpected = "hello expected first"
        case duplicateHello = "hello sent twice"
        case unknownWindow = "unknown window"
        case windowExists = "window already exists"
        case tooManyWindows = "too many windows"
        case tooManyPixels = "windows too large together"
        case badValue = "value out of range"
    }
    public let kind: Kind
    /// The domain's window id the message named (0: none).
    public let window: UInt32
    public let detail: String

    public init(_ kind: Kind, window: UInt32 = 0, _ detail: String) {
        self.kind = kind
        self.window = window
        self.detail = detail
    }

    public var description: String {
        "gui protocol: \(kind.rawValue)" + (window == 0 ? "" : " (window \(window))") + ": \(detail)"
    }
}
