// config/odyssey.toml: what the daemon needs before it loads anything.
// Every key is checked; an unknown key or a bad value is an error naming the
// key and the file, so a typo never silently falls back to a default.
import FoundationEssentials
import Logging
#if canImport(Glibc)
import Glibc
#endif

public struct OdysseyConfig: Sendable {
    /// One backend role ([vmm], [vchan], ...): the default factory and the
    /// per-factory sections ([vmm.libvirt] uri = ...), rendered as text.
    public struct Role: Sendable, Equatable {
        public var defaultFactory: String?
        /// `prefer = [...]`: the order in which factories are tried where the
        /// host chooses one per domain (a domain's vchan: the first that opens
        /// and whose channel the domain's provider can wire).
        public var prefer: [String] = []
        public var sections: [String: [String: String]] = [:]
    }

    public var path: String
    public var stateDir: String
    public var adminSocket: String
    public var adminSocketGroup: String?
    public var pluginDirs: [String]
    public var policyDirs: [String]
    public var logLevel: Logger.Level
    /// Seconds a pending `ask` waits for an answer before it is denied.
    public var askTimeoutSeconds: Int
    /// The in-domain agent binary (bind-mounted read-only into every domain).
    public var agentPath: String
    /// Directories of qrexec services the admin domain (dom0) provides,
    /// after <state_dir>/qubes-rpc. Default: qubes-rpc/ beside the config file.
    public var rpcDirs: [String]
    /// Services every domain gets (bind-mounted read-only at /etc/odyssey/rpc
    /// in each domain). Default: domain-rpc/ beside the config file.
    public var domainRpcDir: String
    /// The guest kernel pool (Qubes' vm-kernels): <kernel_dir>/<name>/vmlinuz,
    /// initrd.img and modules.img, for providers that boot a kernel of their
    /// own; `default` names the one a domain with an empty `kernel` boots.
    /// scripts/guest-kit fills it.
    public var kernelDir = "/var/lib/odyssey/vm-kernels"
    public var roles: [InterfaceKind: Role]
    /// [limits]: caps on disposables, committed memory and pending asks.
    public var limits = ResourceLimits.defaults

    public static let defaultPath = "/etc/odyssey/odyssey.toml"
    public static let defaultSocket = "/run/odyssey/admin.sock"

    /// The built-in defaults (used for keys the file leaves out).
    public static func defaults(path: String) -> OdysseyConfig {
        OdysseyConfig(path: path, stateDir: "/var/lib/odyssey", adminSocket: defaultSocket,
                      adminSocketGroup: nil, pluginDirs: ["/usr/local/lib/odyssey/plugins"],
                      policyDirs: ["/etc/odyssey/policy.d"], logLevel: .info, askTimeoutSeconds: 60,
                      agentPath: Path.join(Path.dirname(Sys.executablePath() ?? "/usr/local/bin/odysseyd"), "odyssey-agent"),
                      rpcDirs: [Path.join(Path.dirname(path), "qubes-rpc")],
                      domainRpcDir: Path.join(Path.dirname(path), "domain-rpc"),
                      roles: [.vmm: Role(defaultFactory: "native"),
                              .vchan: Role(defaultFactory: "socket", prefer: ["socket", "vsock", "virtio-serial", "xen"])])
    }

    public func role(_ kind: InterfaceKind) -> Role { roles[kind] ?? Role() }

    /// Config text for `key` of factory `factory` of `kind`, or nil.
    public func backendValue(_ kind: InterfaceKind, factory: String, key: String) -> String? {
        roles[kind]?.sections[factory]?[key]
    }

    public static func load(path: String) throws(OdysseyError) -> OdysseyConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OdysseyError(.config, "cannot read config \(path): \(Sys.describe(errno: errno))")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw OdysseyError(.config, "\(path): not valid UTF-8")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws(OdysseyError) -> OdysseyConfig {
        let table: TOMLTable
        do throws(TOMLError) { table = try TOMLReader.parse(text) } catch {
            throw OdysseyError(.config, "\(path):\(error.line): \(error.message)")
        }
        // Paths in the file are relative to the file; make that absolute so
        // they do not change meaning when the daemon's directory changes.
        var cwd = [CChar](repeating: 0, count: 4096)
        let here = getcwd(&cwd, cwd.count).map { _ in String(decoding: cwd.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) } ?? "/"
        let reader = ConfigReader(path: path, baseDir: Path.resolve(Path.dirname(path), relativeTo: here))
        return try reader.read(table)
    }
}
