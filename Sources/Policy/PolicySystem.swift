// The domain facts the host supplies, and lookup tables built once per snapshot so that each
// decision costs a few dictionary probes instead of scans over the domain list.

/// What the policy needs to know about one domain (the host's `internal.GetSystemInfo`).
public struct PolicyDomain: Sendable, Codable, Equatable {
    public var name: String
    /// "AdminVM", "AppVM", "TemplateVM", "StandaloneVM" or "DispVM".
    public var type: String
    public var tags: [String]
    public var templateForDispvms: Bool
    public var defaultDispvm: String?
    /// "Running", "Halted", ... Only "Running" counts as running for `autostart=no`.
    public var powerState: String
    /// Without the `uuid:` prefix.
    public var uuid: String?
    /// Internal domains are never offered as ask choices (nor their `@dispvm:NAME`).
    public var `internal`: Bool

    public init(name: String, type: String = "AppVM", tags: [String] = [], templateForDispvms: Bool = false,
                defaultDispvm: String? = nil, powerState: String = "Halted", uuid: String? = nil,
                internal: Bool = false) {
        self.name = name
        self.type = type
        self.tags = tags
        self.templateForDispvms = templateForDispvms
        self.defaultDispvm = defaultDispvm
        self.powerState = powerState
        self.uuid = uuid.map(PolicyDomain.bareUUID)
        self.`internal` = `internal`
    }

    /// Accepts a UUID with or without the `uuid:` prefix. UUIDs are hex: the
    /// canonical form is lower case, so `uuid:ABC...` and `uuid:abc...` name the
    /// same domain in facts, rules and requests alike (one spelling, no bypass).
    static func bareUUID(_ text: String) -> String {
        (text.hasPrefix("uuid:") ? String(text.dropFirst(5)) : text).lowercased()
    }

    enum CodingKeys: String, CodingKey {
        case name, type, tags, uuid, `internal`
        case templateForDispvms = "template_for_dispvms"
        case defaultDispvm = "default_dispvm"
        case powerState = "power_state"
    }

    /// Decodes the DOMAINS.json shape; every field but the name may be missing.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try container.decodeIfPresent(String.self, forKey: .name) ?? "",
                  type: try container.decodeIfPresent(String.self, forKey: .type) ?? "AppVM",
                  tags: try container.decodeIfPresent([String].self, forKey: .tags) ?? [],
                  templateForDispvms: try container.decodeIfPresent(Bool.self, forKey: .templateForDispvms) ?? false,
                  defaultDispvm: try container.decodeIfPresent(String.self, forKey: .defaultDispvm),
                  powerState: try container.decodeIfPresent(String.self, forKey: .powerState) ?? "Halted",
                  uuid: try container.decodeIfPresent(String.self, forKey: .uuid),
                  internal: try container.decodeIfPresent(Bool.self, forKey: .internal) ?? false)
    }
}

/// The tables of a `PolicySystem`, behind one reference so that copying a system (into each
/// decision's context) is one retain.
final class PolicySystemTables: Sendable {
    let domains: [PolicyDomain]
    let indexByName: [String: Int]
    let indexByUUID: [String: Int]
    /// The domain named `dom0`, which every dom0-like spelling refers to.
    let dom0Index: Int?

    // Ask choices: every string an ask could offer, sorted, so that a collected set is a bit set
    // and printing it in order is a walk over the bits.
    let choiceNames: [String]
    let namePosition: [Int]
    let templatePosition: [Int?]
    let dom0Position: Int
    let everyName: ChoiceSet
    let nonAdminNames: ChoiceSet
    let everyTemplate: ChoiceSet
    let namesByType: [String: ChoiceSet]
    let namesByTag: [String: ChoiceSet]
    let templatesByTag: [String: ChoiceSet]
    let runningChoices: ChoiceSet
    let internalChoices: ChoiceSet
    let emptyChoices: ChoiceSet

    init(domains unsortedDomains: [PolicyDomain]) {
        var domains: [PolicyDomain] = []
        var seen: Set<String> = []
        for domain in unsortedDomains.sorted(by: { PolicyFiles.codePointLess($0.name, $1.name) })
        where seen.insert(domain.name).inserted {
            domains.append(domain)
        }
        self.domains = domains
        var indexByName: [String: Int] = [:]
        var indexByUUID: [String: Int] = [:]
        for (index, domain) in domains.enumerated() {
            indexByName[domain.name] = index
            if let uuid = domain.uuid, indexByUUID[uuid] == nil { indexByUUID[uuid] = index }
        }
        self.indexByName = indexByName
        self.indexByUUID = indexByUUID
        self.dom0Index = indexByName["dom0"]

        // The universe of choices: names, "@dispvm:NAME" for templates, and "dom0" even when
        // no domain has that name (`@adminvm` always becomes "dom0").
        var universe: [(text: String, domain: Int?, isTemplate: Bool)] = []
        for (index, domain) in domains.enumerated() {
            universe.append((domain.name, index, false))
            if domain.templateForDispvms { universe.append(("@dispvm:" + domain.name, index, true)) }
        }
        if indexByName["dom0"] == nil { universe.append(("dom0", nil, false)) }
        universe.sort { PolicyFiles.codePointLess($0.text, $1.text) }
        choiceNames = universe.map(\.text)

        var namePosition = [Int](repeating: 0, count: domains.count)
        var templatePosition = [Int?](repeating: nil, count: domains.count)
        var dom0Position = 0
        for (position, entry) in universe.enumerated() {
            if let domain = entry.domain {
                if entry.isTemplate { templatePosition[domain] = position } else { namePosition[domain] = position }
            }
            if !entry.isTemplate && entry.text == "dom0" { dom0Position = position }
        }
        self.namePosition = namePosition
        self.templatePosition = templatePosition
        self.dom0Position = dom0Position

        let empty = ChoiceSet(capacity: universe.count)
        var everyName = empty, nonAdminNames = empty, everyTemplate = empty
        var running = empty, internalChoices = empty
        var byType: [String: ChoiceSet] = [:], byTag: [String: ChoiceSet] = [:]
        var templatesByTag: [String: ChoiceSet] = [:]
        for (index, domain) in domains.enumerated() {
            let position = namePosition[index]
            everyName.insert(position)
            if domain.type != "AdminVM" { nonAdminNames.insert(position) }
            if domain.powerState == "Running" { running.insert(position) }
            // An internal domain is never offered, neither itself nor as `@dispvm:NAME`.
            if domain.internal {
                internalChoices.insert(position)
                if let templatePosition = templatePosition[index] { internalChoices.insert(templatePosition) }
            }
            byType[domain.type, default: empty].insert(position)
            for tag in domain.tags { byTag[tag, default: empty].insert(position) }
            if let templatePosition = templatePosition[index] {
                everyTemplate.insert(templatePosition)
                for tag in domain.tags { templatesByTag[tag, default: empty].insert(templatePosition) }
            }
        }
        self.everyName = everyName
        self.nonAdminNames = nonAdminNames
        self.everyTemplate = everyTemplate
        self.runningChoices = running
        self.internalChoices = internalChoices
        self.namesByType = byType
        self.namesByTag = byTag
        self.templatesByTag = templatesByTag
        self.emptyChoices = empty
    }
}

/// A snapshot of the domains, with lookup tables built once (by name, by UUID, by tag, by type,
/// and the sorted list of possible ask choices).
public struct PolicySystem: Sendable {
    let tables: PolicySystemTables

    public init(domains: [PolicyDomain]) {
        tables = PolicySystemTables(domains: domains)
    }

    /// Sorted by name in code-point order.
    public var domains: [PolicyDomain] { tables.domains }
    var indexByName: [String: Int] { tables.indexByName }
    var indexByUUID: [String: Int] { tables.indexByUUID }
    var dom0Index: Int? { tables.dom0Index }
    var choiceNames: [String] { tables.choiceNames }
    var namePosition: [Int] { tables.namePosition }
    var templatePosition: [Int?] { tables.templatePosition }
    var dom0Position: Int { tables.dom0Position }
    var everyName: ChoiceSet { tables.everyName }
    var nonAdminNames: ChoiceSet { tables.nonAdminNames }
    var everyTemplate: ChoiceSet { tables.everyTemplate }
    var namesByType: [String: ChoiceSet] { tables.namesByType }
    var namesByTag: [String: ChoiceSet] { tables.namesByTag }
    var templatesByTag: [String: ChoiceSet] { tables.templatesByTag }
    var runningChoices: ChoiceSet { tables.runningChoices }
    var internalChoices: ChoiceSet { tables.internalChoices }
    var emptyChoices: ChoiceSet { tables.emptyChoices }

    /// The domain a plain name refers to: by name, or by UUID for `uuid:` names. Every dom0-like
    /// spelling refers to the domain named `dom0`.
    func domainIndex(of text: String) -> Int? {
        if let index = indexByName[text] { return index }
        guard text.hasPrefix("uuid:") else { return nil }
        let uuid = PolicyDomain.bareUUID(text)
        if "uuid:" + uuid == PolicyToken.adminUUIDName, let dom0Index { return dom0Index }
        return indexByUUID[uuid]
    }

    /// The domain named by a request's target or source, if it exists.
    public func domain(named text: String) -> PolicyDomain? {
        domainIndex(of: text).map { domains[$0] }
    }
}
