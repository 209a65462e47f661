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

    public struct Factory: Codable, Sendable, Equatable {
        public var name: String
        public var kind: InterfaceKind
        public var config: [String: ConfigKey]?
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
        let m: PluginManifest
        do { m = try JSONDecoder().decode(PluginManifest.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw OdysseyError(.plugin, "manifest is missing \"\(key.stringValue)\"")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw OdysseyError(.plugin, "manifest is not valid JSON: \(ctx.debugDescription)")
        } catch let DecodingError.typeMismatch(_, ctx) {
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw OdysseyError(.plugin, "manifest field \"\(path)\" has the wrong type")
        } catch {
            throw OdysseyError(.plugin, "manifest is invalid: \(error)")
        }
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
