// A defined domain: the ABI's fixed fields, its params, and what the plugin
// derives from them (validated once, at define time).
import Glibc
import PluginABI
import PluginKit

struct Definition {
    var name: String
    var uuid: String
    var memoryMiB: UInt64
    var maxmemMiB: UInt64
    var vcpus: UInt32
    /// The domain's slot for the default uid range (see `Layout.uidBase`).
    var index: Int
    /// ody_domain_config.params, as given (unknown keys kept, ignored).
    var params: [String: String]

    /// The memory limit: maxmem if set, else memory; 0 = none.
    var limitMiB: UInt64 { maxmemMiB > 0 ? maxmemMiB : memoryMiB }

    // MARK: persistence (NUL-separated key=value, like params)

    func encoded() -> [UInt8] {
        var entries = ["@name=\(name)", "@uuid=\(uuid)", "@memory_mib=\(memoryMiB)", "@maxmem_mib=\(maxmemMiB)",
                       "@vcpus=\(vcpus)", "@index=\(index)"]
        for (k, v) in params.sorted(by: { $0.key < $1.key }) { entries.append("\(k)=\(v)") }
        var out: [UInt8] = []
        for e in entries { out += Array(e.utf8); out.append(0) }
        return out
    }

    static func decode(_ bytes: [UInt8]) -> Definition? {
        var fields: [String: String] = [:]
        var params: [String: String] = [:]
        for part in bytes.split(separator: 0) {
            let s = String(decoding: part, as: UTF8.self)
            guard let eq = s.firstIndex(of: "=") else { continue }
            let k = String(s[..<eq]), v = String(s[s.index(after: eq)...])
            if k.hasPrefix("@") { fields[String(k.dropFirst())] = v } else { params[k] = v }
        }
        guard let name = fields["name"], let index = Int(fields["index"] ?? "") else { return nil }
        return Definition(name: name, uuid: fields["uuid"] ?? "", memoryMiB: UInt64(fields["memory_mib"] ?? "") ?? 0,
                          maxmemMiB: UInt64(fields["maxmem_mib"] ?? "") ?? 0, vcpus: UInt32(fields["vcpus"] ?? "") ?? 0,
                          index: index, params: params)
    }
}

/// What the jailer needs for one start, derived from a definition and the
/// instance config. Every host path is absolute; every check happens here.
struct Layout {
    var name: String
    var rootDir: String
    var persistentRoot: Bool
    var privateDir: String
    var runDir: String
    var initPath: String
    var args: [String]
    var env: [String]
    var bindRO: [String]
    var bindRW: [String]
    var uidBase: UInt32
    var uidCount: UInt32
    var pidsMax: UInt64
    /// RLIMIT_NOFILE (soft and hard) of init, inherited by every process of
    /// the domain; the domain's root cannot raise it (that needs
    /// CAP_SYS_RESOURCE in the host's user namespace). See `defaultNofile`.
    var nofileMax: UInt64
    var volatileMiB: UInt64
    var hostname: String

    static let defaultInit = "/.odyssey/bin/odyssey-agent"
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    static let uidStride: UInt64 = 65536

    /// Domain names: Qubes rules (letter first, [A-Za-z0-9_.-], at most 31).
    static func validName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard (1...31).contains(u.count), let first = u.first, isLetter(first) else { return false }
        return u.allSatisfy { isLetter($0) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 || $0 == 46 }
    }

    private static func isLetter(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }

    /// Paths go into overlayfs option strings and the jailer's spec: absolute,
    /// no "..", no ',' ':' or NUL/newline.
    static func checkPath(_ key: String, _ p: String, domain: String, allowColon: Bool = false) throws {
        let bad = p.utf8.contains { $0 == 44 || $0 == 10 || $0 == 0 || (!allowColon && $0 == 58) || $0 == 92 }
        guard p.hasPrefix("/"), !p.split(separator: "/").contains(".."), !bad else {
            throw NativeError(ODY_E_INVALID, "native: define \(domain): \(key)=\(p): need an absolute path without '..', ',', ':' or '\\'")
        }
    }

    init(_ d: Definition, config: Config) throws {
        let p = d.params
        name = d.name
        guard let root = p["root_dir"], !root.isEmpty else {
            throw NativeError(ODY_E_INVALID, "native: define \(d.name): root_dir (the template root) is required")
        }
        try Layout.checkPath("root_dir", root, domain: d.name)
        rootDir = root
        switch p["root_mode"] ?? "snapshot" {
        case "snapshot": persistentRoot = false
        case "persistent": persistentRoot = true
        case let m: throw NativeError(ODY_E_INVALID, "native: define \(d.name): root_mode=\(m): expected snapshot or persistent")
        }
        privateDir = p["private_dir"] ?? "\(config.stateDir)/private/\(d.name)"
        try Layout.checkPath("private_dir", privateDir, domain: d.name)
        runDir = p["run_dir"] ?? "\(config.stateDir)/run/\(d.name)"
        try Layout.checkPath("run_dir", runDir, domain: d.name)
        initPath = p["init"] ?? Layout.defaultInit
        guard initPath.hasPrefix("/") else {
            throw NativeError(ODY_E_INVALID, "native: define \(d.name): init=\(initPath): need a path inside the domain starting with /")
        }
        var args: [String] = []
        while let a = p["arg\(args.count)"] { args.append(a) }
        self.args = args
        var env = ["PATH=\(Layout.defaultPath)", "HOME=/root", "ODYSSEY_DOMAIN=\(d.name)"]
        for (k, v) in p.sorted(by: { $0.key < $1.key }) where k.hasPrefix("env.") {
            let n = String(k.dropFirst(4))
            guard !n.isEmpty, !n.contains("=") else { continue }
            env.removeAll { $0.hasPrefix(n + "=") }
            env.append("\(n)=\(v)")
        }
        self.env = env
        func binds(_ kind: String) throws -> [String] {
            let keys = p.keys.filter { $0.hasPrefix(kind + ".") }.sorted {
                (Int($0.dropFirst(kind.count + 1)) ?? Int.max, $0) < (Int($1.dropFirst(kind.count + 1)) ?? Int.max, $1)
            }
            return try keys.map { k in
                let v = p[k]!
                guard let colon = v.lastIndex(of: ":") else {
                    throw NativeError(ODY_E_INVALID, "native: define \(d.name): \(k)=\(v): expected HOST:GUEST")
                }
                try Layout.checkPath(k, String(v[..<colon]), domain: d.name)
                try Layout.checkPath(k, String(v[v.index(after: colon)...]), domain: d.name)
                return v
            }
        }
        bindRO = try binds("bind_ro")
        bindRW = try binds("bind_rw")

        let defaultBase = UInt64(config.uidRangeStart) + UInt64(d.index) * Layout.uidStride
        let base = try Layout.number(p, "uid_base", defaultBase, domain: d.name)
        let count = try Layout.number(p, "uid_count", Layout.uidStride, domain: d.name)
        guard base > 0, count > 0, base + count <= UInt64(UInt32.max) else {
            throw NativeError(ODY_E_INVALID, "native: define \(d.name): uid range \(base)+\(count) must lie in 1..<2^32-1")
        }
        uidBase = UInt32(base)
        uidCount = UInt32(count)
        pidsMax = try Layout.number(p, "pids_max", 1024, domain: d.name)
        nofileMax = try Layout.number(p, "nofile_max", Layout.defaultNofile(pidsMax: pidsMax), domain: d.name)
        guard (16...1_048_576).contains(nofileMax) else {
            throw NativeError(ODY_E_INVALID, "native: define \(d.name): nofile_max=\(nofileMax): 16 to 1048576")
        }
        volatileMiB = try Layout.number(p, "volatile_mib", 256, domain: d.name)
        hostname = p["hostname"] ?? d.name
        guard (1...63).contains(hostname.utf8.count), !hostname.contains("\0") else {
            throw NativeError(ODY_E_INVALID, "native: define \(d.name): hostname=\(hostname): 1 to 63 bytes")
        }
    }

    private static func number(_ p: [String: String], _ key: String, _ def: UInt64, domain: String) throws -> UInt64 {
        guard let v = p[key] else { return def }
        guard let n = UInt64(v) else {
            throw NativeError(ODY_E_INVALID, "native: define \(domain): \(key)=\(v): expected a non-negative integer")
        }
        return n
    }

    /// Open files are counted host-wide against fs.file-max; past it, every
    /// process without CAP_SYS_ADMIN (other domains, unprivileged host
    /// services; not the root host daemon) gets ENFILE. A domain can hold at
    /// most pids_max x RLIMIT_NOFILE files, so the default aims that product
    /// at 1/8 of fs.file-max: fs.file-max / 8 / pids_max files per process,
    /// at most 1024 and never below 512 (the agent, PID 1, serves every
    /// session of the domain with these descriptors). E.g. file-max
    /// 2,466,320 and pids_max 1024: 512 per process, 524,288 (21%) per domain.
    static func defaultNofile(pidsMax: UInt64) -> UInt64 {
        let fileMax = Sys.readText("/proc/sys/fs/file-max").flatMap { UInt64($0.split(separator: "\n").first ?? "") } ?? 0
        guard fileMax > 0, pidsMax > 0 else { return 1024 }
        return max(512, min(1024, fileMax / 8 / pidsMax))
    }

    var uidRange: Range<UInt64> { UInt64(uidBase)..<(UInt64(uidBase) + UInt64(uidCount)) }
}
