// FilecopySupport: what the filecopy tests share. A builder for
// qubes.Filecopy streams (the exact wire format, so a test can lie in any
// field), the receiver's reply parsed, a CRC-32 to check it, and
// snapshots of everything outside the incoming directory (an attack must
// leave them unchanged).
import Foundation
import XCTest

/// A qubes.Filecopy stream, built entry by entry. Every field can be set
/// to a lie; `bytes` is what the receiver reads.
struct FilecopyStream {
    var bytes: [UInt8] = []

    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// A file_header as on the wire (32 bytes).
    mutating func header(namelen: UInt32, mode: UInt32, filelen: UInt64, atime: UInt32 = 1_600_000_000,
                         atimeNsec: UInt32 = 0, mtime: UInt32 = 1_600_000_000, mtimeNsec: UInt32 = 0) {
        bytes += Self.le32(namelen) + Self.le32(mode) + Self.le64(filelen)
        bytes += Self.le32(atime) + Self.le32(atimeNsec) + Self.le32(mtime) + Self.le32(mtimeNsec)
    }

    /// One entry with a name given as raw bytes (NUL appended).
    mutating func entry(nameBytes: [UInt8], mode: UInt32, data: [UInt8], filelen: UInt64? = nil,
                        mtime: UInt32 = 1_600_000_000, mtimeNsec: UInt32 = 0, atimeNsec: UInt32 = 0) {
        header(namelen: UInt32(nameBytes.count + 1), mode: mode, filelen: filelen ?? UInt64(data.count),
               atimeNsec: atimeNsec, mtime: mtime, mtimeNsec: mtimeNsec)
        bytes += nameBytes + [0] + data
    }

    mutating func file(_ name: String, _ data: [UInt8], mode: UInt32 = 0o644, mtime: UInt32 = 1_600_000_000,
                       mtimeNsec: UInt32 = 0) {
        entry(nameBytes: Array(name.utf8), mode: Self.regular | mode, data: data, mtime: mtime, mtimeNsec: mtimeNsec)
    }

    mutating func file(_ name: String, _ text: String, mode: UInt32 = 0o644) { file(name, Array(text.utf8), mode: mode) }

    /// A directory as the sender writes it: once before its contents...
    mutating func dir(_ name: String, mode: UInt32 = 0o755) {
        entry(nameBytes: Array(name.utf8), mode: Self.directory | mode, data: [])
    }

    /// ...and once after (mode and times applied then).
    mutating func dirEnd(_ name: String, mode: UInt32 = 0o755, mtime: UInt32 = 1_600_000_000, mtimeNsec: UInt32 = 0) {
        entry(nameBytes: Array(name.utf8), mode: Self.directory | mode, data: [], mtime: mtime, mtimeNsec: mtimeNsec)
    }

    mutating func link(_ name: String, _ target: String) {
        entry(nameBytes: Array(name.utf8), mode: Self.symlink | 0o777, data: Array(target.utf8))
    }

    mutating func end() { header(namelen: 0, mode: 0, filelen: 0, atime: 0, mtime: 0) }
}

/// The receiver's result_header (and the name after it on errors).
struct FilecopyReply {
    var code: UInt32
    var crc: UInt64
    var name: String?

    init?(_ out: [UInt8]) {
        guard out.count >= 16 else { return nil }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(out[at + $1]) << (8 * UInt32($1)) } }
        code = u32(0)
        crc = UInt64(u32(8)) | UInt64(u32(12)) << 32
        if code != 0, out.count >= 20 {
            let n = Int(u32(16))
            if out.count >= 20 + n { name = String(decoding: out[20..<(20 + n)], as: UTF8.self) }
        }
    }
}

/// CRC-32 (IEEE), bitwise: slow and obviously right, for checking.
func filecopyCRC32(_ data: [UInt8]) -> UInt32 {
    var table = [UInt32](repeating: 0, count: 256)
    for i in 0..<256 {
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        table[i] = c
    }
    var crc: UInt32 = 0xFFFF_FFFF
    for b in data { crc = (crc >> 8) ^ table[Int((crc ^ UInt32(b)) & 0xFF)] }
    return ~crc
}

/// What a tree looks like: relative path -> type, mode, size, target or a content digest.
func filecopySnapshot(_ root: String, excluding: String? = nil) -> [String: String] {
    var out: [String: String] = [:]
    func walk(_ dir: String, _ rel: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names {
            let path = dir + "/" + n, r = rel.isEmpty ? n : rel + "/" + n
            if let ex = excluding, path == ex { continue }
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            let kind = st.st_mode & S_IFMT
            var desc = "mode \(String(st.st_mode, radix: 8)) size \(st.st_size) uid \(st.st_uid)"
            if kind == S_IFLNK {
                desc += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
            } else if kind == S_IFREG, st.st_size <= 1 << 20, let d = FileManager.default.contents(atPath: path) {
                desc += " crc \(filecopyCRC32(Array(d)))"
            } else if kind == S_IFREG {
                desc += " mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            }
            out[r] = desc
            if kind == S_IFDIR { walk(path, r) }
        }
    }
    walk(root, "")
    return out
}

/// A harness with a sender ("work") and a receiver ("personal") domain,
/// canaries planted around the incoming directory.
struct FilecopyScene {
    let h: AddonHarness
    let incoming: String
    let before: [String: String]

    init(config: [String: String] = [:]) throws {
        h = try AddonHarness(addons: ["filecopy"])
        if !config.isEmpty { try h.setConfig("filecopy", config) }
        let home = h.home("personal")
        incoming = home + "/QubesIncoming/work"
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        try "secret of personal\n".write(toFile: home + "/secret", atomically: true, encoding: .utf8)
        try "already here\n".write(toFile: incoming + "/existing", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: home + "/QubesIncoming/other", withIntermediateDirectories: true)
        try "from another domain\n".write(toFile: home + "/QubesIncoming/other/kept", atomically: true, encoding: .utf8)
        _ = h.home("work")
        before = filecopySnapshot(h.homes, excluding: incoming)
    }

    /// Feeds a stream to qubes.Filecopy in "personal", called by "work".
    func receive(_ s: FilecopyStream, argument: String? = nil, env: [String: String] = [:]) throws -> (AddonHarness.Result, FilecopyReply?) {
        let r = try h.runService("qubes.Filecopy", argument: argument, source: "work", in: "personal", stdin: s.bytes, env: env)
        return (r, FilecopyReply(r.stdout))
    }

    /// Nothing outside the incoming directory changed, the file that was
    /// there is intact, and no temporary file is left visible or hidden.
    func assertContained(file: StaticString = #filePath, line: UInt = #line) {
        let after = filecopySnapshot(h.homes, excluding: incoming)
        XCTAssertEqual(after, before, "something outside QubesIncoming/work changed", file: file, line: line)
        XCTAssertEqual(try? String(contentsOfFile: incoming + "/existing", encoding: .utf8), "already here\n",
                       "the file already there was touched", file: file, line: line)
        let leftovers = filecopySnapshot(incoming).keys.filter { $0.split(separator: "/").last?.hasPrefix(".ody-incoming") == true }
        XCTAssertEqual(leftovers, [], "a partial file was left behind", file: file, line: line)
    }

    /// The refusal as the sender sees it: a non-zero status, a reply with
    /// `code`, a one-line reason on stderr.
    func assertRefused(_ r: (AddonHarness.Result, FilecopyReply?), code: Int32, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.0.status, 0, "accepted: \(r.0.stderr)", file: file, line: line)
        XCTAssertEqual(r.1.map { Int32($0.code) }, code, "reply \(String(describing: r.1)), stderr: \(r.0.stderr)", file: file, line: line)
        XCTAssertTrue(r.0.stderr.contains("qubes.Filecopy: refused the copy from work"), r.0.stderr, file: file, line: line)
        XCTAssertEqual(r.0.stderr.filter { $0 == "\n" }.count, 1, "not one line: \(r.0.stderr)", file: file, line: line)
        assertContained(file: file, line: line)
    }

    func exists(_ rel: String) -> Bool {
        var st = stat()
        return lstat(incoming + "/" + rel, &st) == 0
    }
}
