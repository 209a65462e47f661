// SplitGPGSupport: what the split-gpg tests share: a throwaway vault
// keyring (ed25519 signing key + cv25519 encryption subkey, made once per
// test process), a harness whose "@default" is the vault, the environment a
// call needs (GNUPGHOME reaches the vault's service through the loopback,
// XDG_RUNTIME_DIR keeps each test's consent memory apart), a gpg wrapper
// that leaves a marker when the vault really runs gpg, and the qubes.Gpg
// stream (split_gpg_wire.h) for talking to the vault without ody-gpg.
import Foundation
import XCTest

enum SplitGPG {
    static let gpg = "/usr/bin/gpg"
    static let uid = "Test <t@example.org>"
    static let email = "t@example.org"

    /// The vault's GNUPGHOME, created on first use; nil (with the reason) if
    /// gpg is missing or the key cannot be made.
    static let keyring: Result<String, Error> = Result {
        guard FileManager.default.isExecutableFile(atPath: gpg) else { throw XCTSkip("\(gpg) is not installed") }
        let home = NSTemporaryDirectory() + "split-gpg-vault-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let gen = try run(gpg, ["--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"], gnupg: home)
        guard gen.status == 0 else { throw XCTSkip("gpg --quick-gen-key failed: \(gen.output)") }
        let list = try run(gpg, ["--batch", "--with-colons", "--list-secret-keys"], gnupg: home)
        guard let fpr = list.output.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") })?
            .split(separator: ":", omittingEmptySubsequences: false)[9] else { throw XCTSkip("no fingerprint: \(list.output)") }
        let sub = try run(gpg, ["--batch", "--passphrase", "", "--quick-add-key", String(fpr), "cv25519", "encr", "never"], gnupg: home)
        guard sub.status == 0 else { throw XCTSkip("gpg --quick-add-key failed: \(sub.output)") }
        // The keyring outlives every test class of the process: removed at exit.
        atexit {
            guard case .success(let home) = SplitGPG.keyring else { return }
            SplitGPG.stopAgent()
            try? FileManager.default.removeItem(atPath: home)
        }
        return home
    }

    static func vaultKeyring() throws -> String { try keyring.get() }

    /// Stops the vault's gpg-agent (gpg starts it again when needed).
    static func stopAgent() {
        guard case .success(let home) = keyring else { return }
        _ = try? run("/usr/bin/gpgconf", ["--kill", "gpg-agent"], gnupg: home)
    }

    /// Runs a program with GNUPGHOME set; stdout and stderr together.
    @discardableResult
    static func run(_ path: String, _ args: [String], gnupg: String, stdin: String? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["GNUPGHOME"] = gnupg
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = stdin.map { FileHandle(forReadingAtPath: $0) ?? FileHandle.nullDevice } ?? FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A harness with split-gpg whose "@default" is the domain "vault", a
    /// private runtime directory for consent memory, and a gpg wrapper that
    /// appends a line to `marker` each time the vault runs it.
    final class Setup {
        let h: AddonHarness
        let gnupg: String
        let runtime: String
        let marker: String

        init(config: [String: String] = [:]) throws {
            gnupg = try SplitGPG.vaultKeyring()
            h = try AddonHarness(addons: ["split-gpg"])
            h.defaultTarget = "vault"
            runtime = h.root + "/run"
            try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            marker = h.root + "/gpg-ran"
            let wrapper = h.root + "/gpg-wrapper"
            try "#!/bin/sh\necho \"$*\" >> '\(marker)'\nexec \(SplitGPG.gpg) \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
            chmod(wrapper, 0o755)
            var c = ["gpg": wrapper]
            for (k, v) in config { c[k] = v }
            try h.setConfig("split-gpg", c)
        }

        var env: [String: String] { ["GNUPGHOME": gnupg, "XDG_RUNTIME_DIR": runtime] }

        /// ody-gpg ARGS in domain `domain` (default "work").
        func gpg(_ args: [String], stdin: [UInt8] = [], stdinPath: String? = nil, in domain: String = "work",
                 env extra: [String: String] = [:]) throws -> AddonHarness.Result {
            var e = env
            for (k, v) in extra { e[k] = v }
            return try h.runCommand(["ody-gpg"] + args, in: domain, stdin: stdin, stdinPath: stdinPath, env: e)
        }

        /// How many times the vault ran gpg.
        var gpgRuns: Int {
            ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n").count
        }

        func consentCalls(from source: String = "work") -> Int {
            h.calls.filter { $0.hasSuffix("odyssey.GpgConsent+\(source)") }.count
        }

        /// Writes `bytes` into the home of `domain`; returns the path.
        @discardableResult
        func file(_ name: String, _ bytes: [UInt8], in domain: String = "work") -> String {
            let path = h.home(domain) + "/" + name
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }
    }

    // MARK: the qubes.Gpg stream (split_gpg_wire.h)

    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    /// The command header, then frames.
    static func stream(_ args: [String], frames: [(Int32, [UInt8])]) -> [UInt8] {
        var command: [UInt8] = []
        for a in args { command += Array(a.utf8) + [0] }
        var out = le32(UInt32(command.count)) + command
        for (fd, data) in frames { out += le32(UInt32(bitPattern: fd)) + le32(UInt32(data.count)) + data }
        return out
    }

    struct Reply {
        var data: [Int32: [UInt8]] = [:]
        var eofs: Set<Int32> = []
        var exitStatus: Int32?
        var text: String { String(decoding: data[2] ?? [], as: UTF8.self) }
    }

    /// Parses what the vault sent back.
    static func reply(_ bytes: [UInt8]) -> Reply {
        var r = Reply()
        var i = 0
        func u32(_ at: Int) -> UInt32 { UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 }
        while i + 8 <= bytes.count {
            let fd = Int32(bitPattern: u32(i)), len = Int(u32(i + 4))
            i += 8
            guard i + len <= bytes.count else { break }
            let payload = Array(bytes[i..<i + len])
            i += len
            if fd == -1 { r.exitStatus = Int32(bitPattern: u32(i - 4)); continue }
            if len == 0 { r.eofs.insert(fd) } else { r.data[fd, default: []] += payload }
        }
        return r
    }
}
