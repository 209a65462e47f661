// What `ody addons` shows, as it travels over the admin socket (JSON): each
// add-on with its services and their side, its client commands, its hooked
// events and its default policy, and whether an admin's file overrides it.
import FoundationEssentials

public struct AddonReport: Codable, Sendable {
    public struct Service: Codable, Sendable {
        public var name: String
        public var side: String   // "domain" | "admin"
    }

    public struct Addon: Codable, Sendable {
        public var id: String
        public var version: String
        public var factory: String
        public var description: String
        public var services: [Service]
        public var commands: [String]
        public var events: [String]
        public var policyFile: String?
        public var policyText: String?
        /// The policy directory whose file of the same name replaces the
        /// add-on's default, if any.
        public var policyOverriddenBy: String?
    }

    public var addons: [Addon]
    /// Plugins the loader refused (a broken add-on is among them, with why).
    public var refused: [PluginReport.Refused]

    public init(packages: [AddonPackage], policyDirectories: [String], refused: [RefusedPlugin]) {
        addons = packages.map { p in
            let override = p.policyFile.flatMap { file in
                policyDirectories.dropLast().first { Sys.exists($0 + "/" + file) }
            }
            return Addon(id: p.id, version: p.version, factory: p.factory, description: p.description,
                         services: p.services.map { Service(name: $0.name, side: $0.side.rawValue) },
                         commands: p.commands, events: p.events, policyFile: p.policyFile, policyText: p.policyText,
                         policyOverriddenBy: override)
        }
        self.refused = refused.map { PluginReport.Refused(path: $0.path, reason: $0.reason) }
    }
}
