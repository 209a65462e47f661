// What `ody plugins` shows, as it travels over the admin socket (JSON).
import FoundationEssentials

public struct PluginReport: Codable, Sendable {
    public struct Factory: Codable, Sendable {
        public var kind: String
        public var name: String
        public var capabilities: [String]
        public var opsVersion: UInt32
    }

    public struct Plugin: Codable, Sendable {
        public var id: String
        public var version: String
        public var license: String
        public var abi: String
        public var library: String
        public var description: String
        public var factories: [Factory]
    }

    public struct Refused: Codable, Sendable {
        public var path: String
        public var reason: String
    }

    public var hostABI: String
    public var plugins: [Plugin]
    public var refused: [Refused]

    public init(registry: PluginRegistry, hostABI: String) {
        self.hostABI = hostABI
        plugins = registry.loaded.map { p in
            Plugin(id: p.id, version: p.version, license: p.license, abi: "\(p.abiMajor).\(p.abiMinor)",
                   library: p.libraryPath, description: p.description,
                   factories: p.factories.map {
                       Factory(kind: $0.kind.rawValue, name: $0.name,
                               capabilities: CapabilityNames.names(kind: $0.kind, bits: $0.capabilities),
                               opsVersion: $0.opsVersion)
                   })
        }
        refused = registry.refused.map { Refused(path: $0.path, reason: $0.reason) }
    }
}

public struct StatusReport: Codable, Sendable {
    public var version: String
    public var pid: Int32
    public var uptimeSeconds: Double
    public var config: String
    public var stateDir: String
    public var adminSocket: String
    public var pluginsLoaded: Int
    public var pluginsRefused: Int
    public var defaultVmm: String?
    public var defaultVmmAvailable: Bool
    public var defaultVchan: String?
    public var openVmms: [String]
    public var policy: String
    /// What domains hold of [limits] now (optional: older daemons omit it).
    public var usage: UsageReport?
}

/// Current use against [limits] (`ody status`).
public struct UsageReport: Codable, Sendable {
    public var memoryCommittedMiB: UInt64
    public var memoryCapacityMiB: UInt64
    public var dispvmsAlive: Int
    public var dispvmsTotal: Int
    public var asksPending: Int
}

enum JSON {
    static func encode<T: Encodable>(_ v: T) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? e.encode(v)) ?? Data("{}".utf8))
    }
}
