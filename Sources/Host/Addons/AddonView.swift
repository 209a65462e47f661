// The add-ons view: one directory odysseyd builds from the loaded add-ons
// (<state_dir>/addons), read by odyssey-addon-run on both sides. odysseyd
// runs admin-side services from admin-rpc/ (on its service path); every
// domain sees the directory read-only at /.odyssey/addons, where the agent
// finds domain-side services in rpc/ and users find commands in bin/ (on
// the PATH). So an add-on is one package for both sides, and installing one
// into a running system is a reload, not a rebuild of any domain.
//
//   odyssey-addon-run                the runner (a copy)
//   index                            service/command lines (runner.h)
//   lib/LIB, conf/FACTORY            libraries; [addon.FACTORY] config
//   rpc/S, admin-rpc/S, bin/C        symlinks to ../odyssey-addon-run
//   policy.d/NN-NAME.policy          default policies, last on the policy path
//
// The directory itself is never replaced (domains have it bind-mounted):
// each file is replaced by rename, and what no longer exists is removed.
// Its content is readable in every domain: add-on config holds no secrets.
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

public struct AddonPackage: Sendable, Equatable {
    public var id: String
    public var libraryPath: String
    public var factory: String
    public var services: [PluginManifest.AddonService]
    public var commands: [String]
    public var events: [String]
    public var policyFile: String?
    public var policyText: String?
    public var config: [String: String]
    public var description: String
    public var version: String

    public init(id: String, libraryPath: String, factory: String, services: [PluginManifest.AddonService],
                commands: [String], events: [String] = [], policyFile: String?, policyText: String?,
                config: [String: String], description: String = "", version: String = "") {
        self.id = id; self.libraryPath = libraryPath; self.factory = factory; self.services = services
        self.commands = commands; self.events = events; self.policyFile = policyFile; self.policyText = policyText
        self.config = config; self.description = description; self.version = version
    }
}

public enum AddonView {
    public static let pathInDomain = "/.odyssey/addons"
    public static let runnerName = "odyssey-addon-run"

    public static func directory(stateDir: String) -> String { stateDir + "/addons" }
    public static func policyDirectory(stateDir: String) -> String { directory(stateDir: stateDir) + "/policy.d" }
    public static func adminServicesDirectory(stateDir: String) -> String { directory(stateDir: stateDir) + "/admin-rpc" }

    /// Builds or updates the view at `dir`. Returns warnings (a service or
    /// command two add-ons both claim goes to the first, the other is named).
    @discardableResult
    public static func build(at dir: String, packages: [AddonPackage], runner: String?) throws(OdysseyError) -> [String] {
        var warnings: [String] = []
        for sub in ["", "/lib", "/conf", "/rpc", "/admin-rpc", "/bin", "/policy.d"] {
            let p = dir + sub
            if !Sys.isDirectory(p) && mkdir(p, 0o755) != 0 && errno != EEXIST { throw Sys.error("mkdir \(p)") }
            _ = chmod(p, 0o755)
        }
        if let runner {
            try copyFile(runner, to: dir + "/" + runnerName, mode: 0o755)
        } else if !packages.isEmpty {
            warnings.append("\(runnerName) was not found beside the agent: add-on services and commands cannot run")
        }

        var index: [String] = []
        var libs: Set<String> = [], confs: Set<String> = [], policies: Set<String> = []
        var links: [String: Set<String>] = ["rpc": [], "admin-rpc": [], "bin": []]
        var owner: [String: String] = [:]
        for p in packages {
            let lib = Path.basename(p.libraryPath)
            try copyFile(p.libraryPath, to: "\(dir)/lib/\(lib)", mode: 0o644)
            libs.insert(lib)
            let conf = p.config.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.split(separator: "\n").joined(separator: " "))\n" }.joined()
            try Sys.writeFileAtomically("\(dir)/conf/\(p.factory)", conf)
            confs.insert(p.factory)
            for s in p.services {
                let sub = s.side == .domain ? "rpc" : "admin-rpc"
                if let other = owner["service " + s.name] {
                    warnings.append("add-on \(p.id): service \(s.name) is already provided by \(other); ignored")
                    continue
                }
                owner["service " + s.name] = p.id
                index.append("service \(s.side.rawValue) \(s.name) \(p.id) \(lib) \(p.factory)")
                links[sub]!.insert(s.name)
            }
            for c in p.commands {
                if let other = owner["command " + c] {
                    warnings.append("add-on \(p.id): command \(c) is already provided by \(other); ignored")
                    continue
                }
                owner["command " + c] = p.id
                index.append("command \(c) \(p.id) \(lib) \(p.factory)")
                links["bin"]!.insert(c)
            }
            if let file = p.policyFile, let text = p.policyText {
                try Sys.writeFileAtomically("\(dir)/policy.d/\(file)", text)
                policies.insert(file)
            }
        }
        try Sys.writeFileAtomically(dir + "/index", index.map { $0 + "\n" }.joined())
        for (sub, names) in links {
            for n in names { try link("\(dir)/\(sub)/\(n)", to: "../\(runnerName)") }
            removeAllBut(names, in: "\(dir)/\(sub)")
        }
        removeAllBut(libs, in: dir + "/lib")
        removeAllBut(confs, in: dir + "/conf")
        removeAllBut(policies, in: dir + "/policy.d")
        return warnings
    }

    /// Copies by temp file + rename: a runner that has the old library
    /// mapped keeps it; the next one maps the new.
    static func copyFile(_ src: String, to dst: String, mode: mode_t) throws(OdysseyError) {
        let bytes: [UInt8]
        let fd = open(src, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Sys.error("open \(src)") }
        defer { Sys.close(fd) }
        bytes = try Sys.readAll(fd, limit: 256 << 20, what: "read \(src)")
        if let current = try? readFile(dst), current == bytes { return }   // unchanged: keep the inode
        let tmp = dst + ".tmp.\(getpid())"
        let out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard out >= 0 else { throw Sys.error("open \(tmp)") }
        do { try Sys.writeAll(out, bytes, what: "write \(tmp)") } catch { Sys.close(out); unlink(tmp); throw error }
        _ = fchmod(out, mode)
        Sys.close(out)
        guard rename(tmp, dst) == 0 else { let e = Sys.error("rename \(tmp)"); unlink(tmp); throw e }
    }

    private static func readFile(_ path: String) throws(OdysseyError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Sys.error("open \(path)") }
        defer { Sys.close(fd) }
        return try Sys.readAll(fd, limit: 256 << 20, what: "read \(path)")
    }

    private static func link(_ path: String, to target: String) throws(OdysseyError) {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buf, buf.count - 1)
        if n > 0, String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == target { return }
        let tmp = path + ".tmp.\(getpid())"
        unlink(tmp)
        guard symlink(target, tmp) == 0 else { throw Sys.error("symlink \(tmp)") }
        guard rename(tmp, path) == 0 else { let e = Sys.error("rename \(tmp)"); unlink(tmp); throw e }
    }

    private static func removeAllBut(_ keep: Set<String>, in dir: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names where !keep.contains(n) { unlink(dir + "/" + n) }
    }
}
