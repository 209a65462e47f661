// Admin API calls for the domain commands: text replies, Qubes errors turned
// into one clear line on stderr and exit status 1.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host

extension ClientOptions {
    /// Calls a method and returns its text; on error prints `ody: <message>` and exits 1.
    func text(_ method: String, _ argument: String = "", dest: String = "dom0", payload: String = "") throws -> String {
        do {
            return try client.callText(AdminRequest(method: method, argument: argument, dest: dest, payload: Array(payload.utf8)))
        } catch {
            printError("ody: \(describe(error, method: method, dest: dest))")
            throw ExitCode(1)
        }
    }

    /// Like `text`, but hands a remote error back to the caller.
    func attempt(_ method: String, _ argument: String = "", dest: String = "dom0", payload: String = "") -> Result<String, AdminClientError> {
        do { return .success(try client.callText(AdminRequest(method: method, argument: argument, dest: dest, payload: Array(payload.utf8)))) }
        catch { return .failure(error) }
    }

    func describe(_ e: AdminClientError, method: String, dest: String) -> String {
        switch e {
        case .unreachable(let m): return m
        case .remote(let r):
            switch r.type {
            case "PermissionDenied" where r.message.isEmpty: return "permission denied: \(method) on \(dest)"
            case "QubesVMNotFoundError": return "no such domain: '\(quoted(r.message) ?? dest)'"
            default: return r.message.isEmpty ? r.type : r.message
            }
        }
    }

    private func quoted(_ m: String) -> String? {
        guard let a = m.firstIndex(of: "'"), let b = m.lastIndex(of: "'"), a < b else { return nil }
        return String(m[m.index(after: a)..<b])
    }

    /// The domain's power state (Halted, Running, Paused...).
    func state(_ name: String) throws -> String {
        let line = try text("admin.vm.List", dest: name)
        return field("state", line) ?? "NA"
    }
}

/// `key=value` out of a space-separated line.
func field(_ key: String, _ line: String) -> String? {
    for tok in line.split(separator: " ") where tok.hasPrefix(key + "=") { return String(tok.dropFirst(key.count + 1)) }
    return nil
}

/// One admin.vm.property.Get / GetAll value: `default=True type=int 400`.
struct PropertyLine {
    var isDefault: Bool
    var type: String
    var value: String

    init(_ s: Substring) {
        let parts = s.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        isDefault = parts.first == "default=True"
        type = parts.count > 1 ? String(parts[1].dropFirst(5)) : "str"
        value = parts.count > 2 ? String(parts[2]) : ""
    }

    /// admin.*.property.GetAll: `NAME default=.. type=.. VALUE` per line, unescaped.
    static func all(_ text: String) -> [(String, PropertyLine)] {
        text.split(separator: "\n").map { line in
            let sp = line.firstIndex(of: " ") ?? line.endIndex
            var p = PropertyLine(sp < line.endIndex ? line[line.index(after: sp)...] : "")
            p.value = unescape(p.value)
            return (String(line[..<sp]), p)
        }
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = "", esc = false
        for c in s {
            if esc { out.append(c == "n" ? "\n" : c); esc = false } else if c == "\\" { esc = true } else { out.append(c) }
        }
        return out
    }
}

/// Colours in the terminal: only on a tty, and never with NO_COLOR set.
enum Terminal {
    static let color: Bool = isatty(1) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    static let stderrIsTTY = isatty(2) == 1

    /// `text` in the label colour `0xRRGGBB` (24-bit ANSI).
    static func paint(_ text: String, _ hex: String) -> String {
        guard color, hex.hasPrefix("0x"), let v = UInt32(hex.dropFirst(2), radix: 16) else { return text }
        return "\u{1b}[38;2;\((v >> 16) & 0xff);\((v >> 8) & 0xff);\(v & 0xff)m\(text)\u{1b}[0m"
    }
}

/// Left-aligned columns, two spaces apart; `visible` measures a cell without its colour codes.
func printTable(_ rows: [[String]], visible: (String) -> Int = visibleWidth) {
    guard let n = rows.first?.count else { return }
    var widths = [Int](repeating: 0, count: n)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], visible(c)) } }
    for r in rows {
        var line = ""
        for (i, c) in r.enumerated() {
            line += c
            if i < n - 1 { line += String(repeating: " ", count: widths[i] - visible(c) + 2) }
        }
        print(line)
    }
}

func visibleWidth(_ s: String) -> Int {
    var n = 0, esc = false
    for c in s.unicodeScalars {
        if esc { if c == "m" { esc = false }; continue }
        if c == "\u{1b}" { esc = true; continue }
        n += 1
    }
    return n
}
