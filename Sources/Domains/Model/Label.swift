// Labels: (index, colour, name). The 8 Qubes labels are built in; custom
// labels get the next free index (admin.label.Create / Remove).

public struct Label: Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let name: String
    /// `0xRRGGBB`, as qubesd prints it (admin.label.Get).
    public let color: String

    public init(index: Int, name: String, color: String) {
        self.index = index
        self.name = name
        self.color = color
    }

    public var description: String { name }
    /// Built-in labels cannot be removed.
    public var isBuiltin: Bool { index >= 1 && index <= 8 }

    public static let builtin: [Label] = [
        Label(index: 1, name: "red", color: "0xcc0000"),
        Label(index: 2, name: "orange", color: "0xf57900"),
        Label(index: 3, name: "yellow", color: "0xedd400"),
        Label(index: 4, name: "green", color: "0x73d216"),
        Label(index: 5, name: "gray", color: "0x555555"),
        Label(index: 6, name: "blue", color: "0x3465a4"),
        Label(index: 7, name: "purple", color: "0x75507b"),
        Label(index: 8, name: "black", color: "0x000000"),
    ]

    /// The RGB components of the colour (for a terminal's 24-bit colour).
    public var rgb: (r: UInt8, g: UInt8, b: UInt8) {
        let hex = color.dropFirst(2)
        let v = UInt32(hex, radix: 16) ?? 0
        return (UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff))
    }

    /// Label names follow qubesd: `[a-zA-Z0-9_-]+`; colours `0xRRGGBB`.
    static func validate(name: String, color: String) throws(DomainError) {
        guard !name.isEmpty, name.utf8.count <= 31 else { throw .value("label name must be 1 to 31 characters: '\(name)'") }
        for c in name.utf8 where !(DomainName.isLetter(c) || DomainName.isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")) {
            throw .value("label name '\(name)' may contain only A-Z, a-z, 0-9, '_' and '-'")
        }
        let u = Array(color.utf8)
        let hexOK = u.count == 8 && u[0] == UInt8(ascii: "0") && (u[1] == UInt8(ascii: "x") || u[1] == UInt8(ascii: "X"))
            && u[2...].allSatisfy { DomainName.isDigit($0) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
        guard hexOK else { throw .value("label colour '\(color)' must be 0xRRGGBB") }
    }
}
