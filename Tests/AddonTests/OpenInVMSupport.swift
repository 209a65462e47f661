// OpenInVMSupport: what the open-in-vm tests share: viewer scripts that
// record what they saw, the qubes.OpenInVM request bytes, and file identity.
import Foundation
import XCTest

/// A scratch directory with executable /bin/sh scripts and the marker files
/// they leave. The service runs on this machine, so a viewer "in" the other
/// domain can report to the test through plain files.
struct OpenInVMScratch {
    let dir: String

    init(_ h: AddonHarness) throws {
        dir = h.root + "/open-in-vm-scratch"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
    }

    /// Writes an executable script `name` with `body` after a #!/bin/sh line.
    @discardableResult
    func script(_ name: String, _ body: String) throws -> String {
        let path = dir + "/" + name
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    /// A viewer that first records the path it got ("seen-path"), the file's
    /// mode ("seen-mode"), its content ("seen-data") and $HOME ("seen-home"),
    /// then runs `then` (with "$1" the file).
    func viewer(_ then: String = "") throws -> String {
        try script("viewer", """
        printf '%s' "$1" > \(dir)/seen-path
        stat -c %a "$1" > \(dir)/seen-mode
        cat "$1" > \(dir)/seen-data
        printf '%s' "$HOME" > \(dir)/seen-home
        \(then)
        """)
    }

    func marker(_ name: String) -> String? {
        try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/" + name) }
}

enum OpenInVMWire {
    /// The qubes.OpenInVM request: the 256-byte NUL-padded name block, then the data.
    static func request(name: [UInt8], data: [UInt8]) -> [UInt8] {
        precondition(name.count <= 256)
        return name + [UInt8](repeating: 0, count: 256 - name.count) + data
    }

    static func request(_ name: String, _ data: String) -> [UInt8] {
        request(name: Array(name.utf8), data: Array(data.utf8))
    }
}

/// Files on the calling side: identity (what tells "replaced" from "left
/// alone"), text, and leftovers. Namespaced: AddonTests is shared.
enum OpenInVMFile {
    struct Identity: Equatable {
        let inode: UInt64
        let mtimeSec: Int
        let mtimeNsec: Int
        let mode: UInt32
    }

    static func identity(_ path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(inode: UInt64(st.st_ino), mtimeSec: Int(st.st_mtim.tv_sec), mtimeNsec: Int(st.st_mtim.tv_nsec),
                        mode: UInt32(st.st_mode) & 0o7777)
    }

    static func text(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    static func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
    }

    /// Entries of `dir` whose names start with `prefix` (leftover temporaries).
    static func entries(in dir: String, prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(prefix) }
    }
}
