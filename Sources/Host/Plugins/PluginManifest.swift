// The small JSON file beside each plugin library: lets the host list and
// check a plugin before mapping it, and catches a library that is not what
// its manifest says.
import FoundationEssentials

public struct PluginManifest: Codable, Sendable, Equatable {
    public struct ABI: Codable, Sendable, Equatable {
        public var major: UInt32
        public var minor: UInt32
    }

    /// A config key a factory reads from its [kind.name] section.
    public struct ConfigKey: Codable, Sendable, Equatable {
        public var type: String?        // "string" | "int" | "bool" | "path" (documentation)
        public var `default`: String?
        public var help: String?
    }

    /// A qrexec service an add-on provides, and the side it runs on.
    public struct AddonService: Codable, Sendable, Equatable {
        public enum Side: String, Codable, Sendable { case domain, admin }
        public var name: String
        public var side: Side
    }

    public struct Factory: Codable, Sendable, Equatable {
        public var name: String
        public var kind: InterfaceKind
        public var config: [String: ConfigKey]?
        // Add-ons only (kind "addon"); see AddonManifest.swift for the rules.
        public var services: [AddonService] = []
        public var commands: [String] = []
        public var policy: String? = nil
        public var events: [String] = []
    }

    public var id: String
    public var library: String
    public var abi: ABI
    public var version: String?
    public var license: String?
    public var description: String?
    public var factories: [Factory]

    /// Parses and checks a manifest; errors say which field is wrong.
    public static func decode(_ data: Data) throws(OdysseyError) -> PluginManifest {
        let root: ManifestJSON
        do throws(ManifestJSON.Failure) { root = try ManifestJSON.parse(Array(data)) } catch {
            throw OdysseyError(.plugin, "manifest is not valid JSON: \(error.message)")
        }
        let m = try Fields(root, "").manifest()
        guard FactoryName.isValid(String(m.id.map { $0 == "." ? "-" : $0 })) else {
            throw OdysseyError(.plugin, "manifest id \"\(m.id)\" must match [a-z0-9_.-]+")
        }
        guard !m.library.isEmpty, !m.library.hasPrefix("/"), !m.library.split(separator: "/").contains("..") else {
            throw OdysseyError(.plugin, "manifest library \"\(m.library)\" must be a path relative to the manifest, without ..")
        }
        guard !m.factories.isEmpty else { throw OdysseyError(.plugin, "manifest lists no factories") }
        for f in m.factories where !FactoryName.isValid(f.name) {
            throw OdysseyError(.plugin, "manifest factory name \"\(f.name)\" must match [a-z0-9_-]+")
        }
        return m
    }
}

/// Typed access to the parsed manifest, naming the field in every error.
private struct Fields {
    let v: ManifestJSON
    let path: String
    init(_ v: ManifestJSON, _ path: String) { self.v = v; self.path = path }

    private func at(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
    private func missing(_ k: String) -> OdysseyError { OdysseyError(.plugin, "manifest is missing \"\(at(k))\"") }
    private func wrong(_ k: String) -> OdysseyError { OdysseyError(.plugin, "manifest field \"\(at(k))\" has the wrong type") }

    func string(_ k: String) throws(OdysseyError) -> String {
        guard let x = v[k] else { throw missing(k) }
        guard case .string(let s) = x else { throw wrong(k) }
        return s
    }

    func optionalString(_ k: String) throws(OdysseyError) -> String? {
        guard let x = v[k], x != .null else { return nil }
        guard case .string(let s) = x else { throw wrong(k) }
        return s
    }

    func uint32(_ k: String) throws(OdysseyError) -> UInt32 {
        guard let x = v[k] else { throw missing(k) }
        guard case .number(let d) = x, d >= 0, d <= Double(UInt32.max), d == d.rounded() else { throw wrong(k) }
        return UInt32(d)
    }

    func manifest() throws(OdysseyError) -> PluginManifest {
        guard case .object = v else { throw OdysseyError(.plugin, "manifest is not a JSON object") }
        guard let abiValue = v["abi"] else { throw missing("abi") }
        let abi = Fields(abiValue, at("abi"))
        guard let fs = v["factories"] else { throw missing("factories") }
        guard case .array(let items) = fs else { throw wrong("factories") }
        var factories: [PluginManifest.Factory] = []
        for (n, item) in items.enumerated() {
            let f = Fields(item, "factories[\(n)]")
            let kindText = try f.string("kind")
            guard let kind = InterfaceKind(rawValue: kindText) else {
                throw OdysseyError(.plugin, "manifest field \"factories[\(n)].kind\" has the wrong type (unknown kind \"\(kindText)\")")
            }
            var config: [String: PluginManifest.ConfigKey]?
            if let c = item["config"], c != .null {
                guard case .object(let keys) = c else { throw f.wrong("config") }
                var out: [String: PluginManifest.ConfigKey] = [:]
                for (key, spec) in keys {
                    let k = Fields(spec, "factories[\(n)].config.\(key)")
                    out[key] = PluginManifest.ConfigKey(type: try k.optionalString("type"), default: try k.optionalString("default"),
                                                        help: try k.optionalString("help"))
                }
                config = out
            }
            var factory = PluginManifest.Factory(name: try f.string("name"), kind: kind, config: config)
            try AddonManifest.read(item, into: &factory, at: "factories[\(n)]")
            factories.append(factory)
        }
        return PluginManifest(id: try string("id"), library: try string("library"),
                              abi: PluginManifest.ABI(major: try abi.uint32("major"), minor: try abi.uint32("minor")),
                              version: try optionalString("version"), license: try optionalString("license"),
                              description: try optionalString("description"), factories: factories)
    }
}
