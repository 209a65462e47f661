// qubes.VMExec+ARG: a command's argv carried in a service argument (Qubes
// R4.1+). The argument splits on '+' into words; a word may use only
// [A-Za-z0-9._-], where "--" stands for '-' and "-HH" (two uppercase hex
// digits) for the byte 0xHH. The words are exec'd as they are, never
// through a shell.

public enum VMExecArgument {
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The argv `untrusted_argument` (without its leading '+') encodes.
    public static func decode(_ untrusted_argument: String) throws(Invalid) -> [[UInt8]] {
        guard !untrusted_argument.isEmpty else { throw Invalid(description: "qubes.VMExec needs a command in its argument") }
        var argv: [[UInt8]] = []
        for part in untrusted_argument.split(separator: "+", omittingEmptySubsequences: false) {
            let b = Array(part.utf8)
            var out: [UInt8] = []
            var i = 0
            while i < b.count {
                let c = b[i]
                let plain = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x5f
                if plain { out.append(c); i += 1; continue }
                guard c == 0x2d else { throw Invalid(description: "illegal character in qubes.VMExec argument") }
                if i + 1 < b.count, b[i + 1] == 0x2d { out.append(0x2d); i += 2; continue }
                guard i + 2 < b.count, let hi = hex(b[i + 1]), let lo = hex(b[i + 2]) else {
                    throw Invalid(description: "'-' in a qubes.VMExec argument must be '--' or '-HH'")
                }
                out.append(hi << 4 | lo)
                i += 3
            }
            argv.append(out)
        }
        guard let first = argv.first, !first.isEmpty else { throw Invalid(description: "qubes.VMExec: empty program name") }
        guard !argv.contains(where: { $0.contains(0) }) else { throw Invalid(description: "qubes.VMExec: NUL byte in an argument") }
        return argv
    }

    /// Uppercase hex only, as the reference accepts.
    private static func hex(_ c: UInt8) -> UInt8? {
        if c >= 0x30 && c <= 0x39 { return c - 0x30 }
        if c >= 0x41 && c <= 0x46 { return c - 0x41 + 10 }
        return nil
    }
}
