// The [vmm.native] config section, with documented defaults.
import Glibc
import PluginABI
import PluginKit
import CVmmNative

struct Config {
    /// Definitions, run records, console logs, default run/private dirs.
    var stateDir: String
    /// The odyssey-jailer binary.
    var jailer: String
    /// Cgroup directory under each v1 hierarchy root (/sys/fs/cgroup/<ctl>/<parent>/<domain>).
    var cgroupParent: String
    var seccomp: SeccompProfile
    /// First host uid of the default ranges (uid_base = start + index * 65536).
    var uidRangeStart: UInt32
    /// How long shutdown waits for init before SIGKILL.
    var shutdownTimeoutMs: UInt64
    /// Bytes a console log may reach before it is rotated (0: unlimited).
    var consoleLogMax: Int64
    /// CPUs no single domain may use (its CPU quota is at most the host's
    /// CPUs minus these, and at least one), so the host and the other
    /// domains always have that much.
    var hostCPUReserve: UInt32 = 1

    static let defaultRootStateDir = "/var/lib/odyssey/vmm-native"
    static let jailerName = "odyssey-jailer"
    static let profileName = "native-domain.json"

    static func load(_ host: HostServices) throws -> Config {
        let uid = getuid()
        let stateDir = host.config("state_dir") ?? (uid == 0 ? defaultRootStateDir : "/tmp/odyssey-vmm-native-\(uid)")
        try Layout.checkPath("state_dir", stateDir, domain: "(config)")
        let moduleDir = Config.moduleDirectory()
        let jailer = host.config("jailer") ?? "\(moduleDir)/\(jailerName)"
        guard access(jailer, X_OK) == 0 else {
            throw NativeError(ODY_E_NOT_FOUND, "native: jailer \(jailer) is not executable (\(Sys.errnoName(errno))); set [vmm.native] jailer", errno: errno)
        }
        let parent = host.config("cgroup_parent") ?? "odyssey"
        guard !parent.isEmpty, !parent.hasPrefix("/"), !parent.split(separator: "/").contains("..") else {
            throw NativeError(ODY_E_INVALID, "native: cgroup_parent=\(parent): need a relative path such as 'odyssey'")
        }
        let profilePath: String
        if let p = host.config("seccomp_profile") {
            profilePath = p
        } else if let found = Config.findProfile(near: moduleDir) {
            profilePath = found
        } else {
            throw NativeError(ODY_E_NOT_FOUND, "native: no seccomp profile found (looked in /etc/odyssey/seccomp, next to the plugin and in config/seccomp above it); set [vmm.native] seccomp_profile")
        }
        let seccomp = try SeccompProfile.load(profilePath)
        let start = UInt32(host.config("uid_range_start") ?? "") ?? 1_000_000
        let timeout = UInt64(host.config("shutdown_timeout_ms") ?? "") ?? 10_000
        let consoleMax = host.config("console_log_max").flatMap { Int64($0) } ?? ConsoleLog.defaultMax
        guard consoleMax >= 0, consoleMax <= 1 << 30 else {
            throw NativeError(ODY_E_INVALID, "native: console_log_max=\(consoleMax): 0 (unlimited) to 1073741824 bytes")
        }
        let reserve = host.config("host_cpu_reserve").flatMap { UInt32($0) } ?? 1
        guard reserve <= 1024 else { throw NativeError(ODY_E_INVALID, "native: host_cpu_reserve=\(reserve): 0 to 1024 CPUs") }
        return Config(stateDir: stateDir, jailer: jailer, cgroupParent: parent, seccomp: seccomp,
                      uidRangeStart: start, shutdownTimeoutMs: timeout, consoleLogMax: consoleMax, hostCPUReserve: reserve)
    }

    /// The directory holding this plugin's .so, found through dladdr on a
    /// symbol of our own module.
    static func moduleDirectory() -> String {
        guard let fname = vmm_module_path() else { return "." }
        var path = String(cString: fname)
        if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) } else { path = "." }
        if !path.hasPrefix("/"), let real = realpath(path, nil) {
            path = String(cString: real)
            free(real)
        }
        return path
    }

    /// Default profile search: /etc/odyssey/seccomp/, next to the .so
    /// (installed layout), then config/seccomp/ in the directories above it
    /// (a SwiftPM build tree: .build/<triple>/<config>/libvmm-native.so).
    static func findProfile(near dir: String) -> String? {
        var candidates = ["/etc/odyssey/seccomp/\(profileName)", "\(dir)/\(profileName)", "\(dir)/seccomp/\(profileName)"]
        var d = dir
        for _ in 0..<5 {
            guard let slash = d.lastIndex(of: "/"), slash != d.startIndex else { break }
            d = String(d[..<slash])
            candidates.append("\(d)/config/seccomp/\(profileName)")
        }
        return candidates.first { access($0, R_OK) == 0 }
    }
}
