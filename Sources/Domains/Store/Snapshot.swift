// The committed state of the store, in memory: every read is served from an
// immutable snapshot (no SQL, no lock held while reading), and a commit
// publishes a new one. Property inheritance is resolved here.

/// One domain as stored: explicit values only (defaults are resolved on read).
public struct DomainRecord: Sendable {
    public let qid: Int
    public let uuid: DomainUUID
    public let name: String
    public let klass: DomainClass
    /// Explicitly set properties, raw text (vm properties hold the target's UUID).
    public internal(set) var properties: [String: String]
    public internal(set) var features: [String: String]
    /// Stored tags; the automatic `isolation-*` tag is added on read.
    public internal(set) var storedTags: Set<String>
    /// Per-volume `revisions_to_keep` overrides.
    public internal(set) var revisionsToKeep: [String: Int]
}

/// A property as the Admin API reports it.
public struct PropertyValue: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let type: PropertyType
    /// The value as text: bool True/False, int decimal, vm the domain's name ("" = None), label its name.
    public var value: String
    public let isDefault: Bool

    /// `default=True type=int 400`: the admin.vm.property.Get answer.
    public var qubesGetLine: String { "default=\(isDefault ? "True" : "False") type=\(type.rawValue) \(value)" }
    public var description: String { "\(name)=\(value)\(isDefault ? " (default)" : "")" }
}

/// What admin.vm.List and `ody ls` need about one domain.
public struct DomainInfo: Sendable, Equatable {
    public let name: String
    public let klass: DomainClass
    public let uuid: DomainUUID
    public let qid: Int
    public let label: Label
    /// The template's name (AppVM, DispVM), else nil.
    public let template: String?
    /// The effective isolation provider; nil for the AdminVM.
    public let vmm: String?
}

public struct DomainsSnapshot: Sendable {
    var domains: [String: DomainRecord]
    var nameByUUID: [DomainUUID: String]
    var labels: [String: Label]
    var globals: [String: String]
    /// The host config's default isolation provider (default of `default_vmm`).
    let defaultVmm: String

    // MARK: domains

    public var domainNames: [String] { domains.keys.sorted() }
    public var count: Int { domains.count }
    public func contains(_ name: String) -> Bool { domains[name] != nil }

    func record(_ name: String) throws(DomainError) -> DomainRecord {
        guard let r = domains[name] else { throw .vmNotFound(name) }
        return r
    }

    public func domain(_ name: String) throws(DomainError) -> DomainInfo { info(try record(name)) }

    /// All domains, sorted by name (admin.vm.List order).
    public func allDomains() -> [DomainInfo] { domainNames.map { info(domains[$0]!) } }

    func info(_ r: DomainRecord) -> DomainInfo {
        let labelName = rawEffective("label", r) ?? "black"
        let label = labels[labelName] ?? Label(index: 0, name: labelName, color: "0x000000")
        let template = r.klass.hasTemplate ? r.properties["template"].flatMap { nameByUUID[DomainUUID(unchecked: $0)] } : nil
        return DomainInfo(name: r.name, klass: r.klass, uuid: r.uuid, qid: r.qid, label: label,
                          template: template, vmm: vmm(of: r))
    }

    /// Domains whose `template` is `name` (AppVMs of a template, DispVMs of a disposable template).
    public func children(of name: String) -> [String] {
        guard let r = domains[name] else { return [] }
        return domains.values.filter { $0.properties["template"] == r.uuid.text }.map(\.name).sorted()
    }

    /// The domain whose root this one boots from: itself (TemplateVM,
    /// StandaloneVM), or the end of its template chain.
    public func rootSource(of name: String) throws(DomainError) -> String {
        var r = try record(name)
        var seen = 0
        while r.klass.hasTemplate {
            guard let t = templateRecord(r) else { throw .storage("\(r.name): its template is missing") }
            r = t
            seen += 1
            if seen > 8 { throw .other("\(name): template chain too long") }
        }
        return r.name
    }

    // MARK: properties

    public func propertyNames(of name: String) throws(DomainError) -> [String] {
        PropertyTable.names(for: try record(name).klass)
    }

    public func property(_ prop: String, of name: String) throws(DomainError) -> PropertyValue {
        let r = try record(name)
        guard let def = PropertyTable.definition(prop, for: r.klass) else { throw .noSuchProperty(domain: name, property: prop) }
        let explicit = r.properties[prop]
        guard let raw = explicit ?? defaultRaw(def, r) else {
            throw .propertyAccess(domain: name, property: prop, reason: "not set and has no default")
        }
        return PropertyValue(name: prop, type: def.type, value: present(raw, def.type), isDefault: explicit == nil && !def.setAtCreation)
    }

    /// admin.vm.property.GetAll: every property that has a value, by name.
    public func allProperties(of name: String) throws(DomainError) -> [PropertyValue] {
        let r = try record(name)
        return PropertyTable.names(for: r.klass).compactMap { try? property($0, of: name) }
    }

    /// admin.vm.property.GetDefault: the value the property would have if reset; nil if it has none.
    public func propertyDefault(_ prop: String, of name: String) throws(DomainError) -> PropertyValue? {
        let r = try record(name)
        guard let def = PropertyTable.definition(prop, for: r.klass) else { throw .noSuchProperty(domain: name, property: prop) }
        return defaultRaw(def, r).map { PropertyValue(name: prop, type: def.type, value: present($0, def.type), isDefault: true) }
    }

    public func propertyHelp(_ prop: String, of name: String) throws(DomainError) -> String {
        let r = try record(name)
        guard let def = PropertyTable.definition(prop, for: r.klass) else { throw .noSuchProperty(domain: name, property: prop) }
        return def.help
    }

    public func globalProperty(_ prop: String) throws(DomainError) -> PropertyValue {
        guard let def = PropertyTable.globalByName[prop] else { throw .noSuchProperty(domain: nil, property: prop) }
        let explicit = globals[prop]
        return PropertyValue(name: prop, type: def.type, value: present(explicit ?? globalDefault(def), def.type),
                             isDefault: explicit == nil)
    }

    public func globalPropertyDefault(_ prop: String) throws(DomainError) -> PropertyValue {
        guard let def = PropertyTable.globalByName[prop] else { throw .noSuchProperty(domain: nil, property: prop) }
        return PropertyValue(name: prop, type: def.type, value: present(globalDefault(def), def.type), isDefault: true)
    }

    public var globalPropertyNames: [String] { PropertyTable.global.map(\.name) }

    public func globalPropertyHelp(_ prop: String) throws(DomainError) -> String {
        guard let def = PropertyTable.globalByName[prop] else { throw .noSuchProperty(domain: nil, property: prop) }
        return def.help
    }

    func globalDefault(_ def: PropertyDefinition) -> String {
        if def.name == "default_vmm" { return defaultVmm }
        switch def.rule {
        case .fixed(let v): return v
        // One level: default_pool_* follow default_pool (whose default is fixed).
        case .global(let g) where g != def.name: return globals[g] ?? PropertyTable.globalByName[g].map(globalDefault) ?? ""
        default: return ""
        }
    }

    func globalRaw(_ prop: String) -> String {
        if let v = globals[prop] { return v }
        return PropertyTable.globalByName[prop].map(globalDefault) ?? ""
    }

    /// Explicit value, else default; raw text (vm = UUID). nil: no value.
    func rawEffective(_ prop: String, _ r: DomainRecord) -> String? {
        guard let def = PropertyTable.definition(prop, for: r.klass) else { return nil }
        return r.properties[prop] ?? defaultRaw(def, r)
    }

    func templateRecord(_ r: DomainRecord) -> DomainRecord? {
        guard r.klass.hasTemplate, let t = r.properties["template"], let n = nameByUUID[DomainUUID(unchecked: t)] else { return nil }
        return domains[n]
    }

    /// The default (what the value is when not set on the domain).
    func defaultRaw(_ def: PropertyDefinition, _ r: DomainRecord, depth: Int = 0) -> String? {
        // Qubes specifics that do not fit the table:
        switch (def.name, r.klass) {
        case ("label", .dispVM):              // a disposable looks like its disposable template
            return templateRecord(r).flatMap { rawEffective("label", $0) }
        case ("netvm", .templateVM):          // templates have no network by default
            return ""
        case ("netvm", .dispVM):              // disposables use their disposable template's netvm
            if let t = templateRecord(r) { return rawEffective("netvm", t) }
        case ("netvm", _):
            // A domain is never its own default netvm (sys-firewall with default_netvm=sys-firewall).
            let g = globalRaw("default_netvm")
            return g == r.uuid.text ? "" : g
        case ("keyboard_layout", .adminVM):
            return "us++"
        case ("keyboard_layout", _):          // qubesd: the GUI domain's layout, us++ without one
            if depth < 8, let g = rawEffective("guivm", r), !g.isEmpty, let n = nameByUUID[DomainUUID(unchecked: g)],
               let gr = domains[n], gr.name != r.name {
                return gr.properties["keyboard_layout"] ?? defaultRaw(def, gr, depth: depth + 1)
            }
            return "us++"
        case ("icon", _):                     // Qubes icon names: appvm-blue, templatevm-black, dispvm-red...
            return "\(r.klass.rawValue.lowercased())-\(rawEffective("label", r) ?? "black")"
        default: break
        }
        return resolve(def.rule, def, r, depth: depth)
    }

    private func resolve(_ rule: DefaultRule, _ def: PropertyDefinition, _ r: DomainRecord, depth: Int) -> String? {
        switch rule {
        case .required: return nil
        case .fixed(let v): return v
        case .global(let g): return globalRaw(g)
        case .computed(let f): return f(r)
        case .template(let fallback):
            if depth < 8, let t = templateRecord(r), PropertyTable.definition(def.name, for: t.klass) != nil {
                return t.properties[def.name] ?? defaultRaw(def, t, depth: depth + 1)
            }
            return resolve(fallback, def, r, depth: depth)
        }
    }

    /// Raw text to what the Admin API prints.
    func present(_ raw: String, _ type: PropertyType) -> String {
        guard type == .vm, !raw.isEmpty else { return raw }
        return nameByUUID[DomainUUID(unchecked: raw)] ?? ""
    }

    // MARK: tags, features, labels

    func vmm(of r: DomainRecord) -> String? {
        guard r.klass != .adminVM, let v = rawEffective("vmm", r), !v.isEmpty else { return nil }
        return v
    }

    /// The tags the store maintains itself for a domain.
    func automaticTags(_ r: DomainRecord) -> Set<String> {
        vmm(of: r).map { [TagRules.isolationPrefix + $0] } ?? []
    }

    /// Every tag of the domain, sorted, including the automatic `isolation-<vmm>`.
    public func tags(of name: String) throws(DomainError) -> [String] {
        let r = try record(name)
        return r.storedTags.union(automaticTags(r)).sorted()
    }

    public func hasTag(_ tag: String, _ name: String) throws(DomainError) -> Bool {
        let r = try record(name)
        return r.storedTags.contains(tag) || automaticTags(r).contains(tag)
    }

    /// Domains carrying `tag` (policy `@tag:X`).
    public func domains(taggedWith tag: String) -> [String] {
        domainNames.filter { n in (try? hasTag(tag, n)) ?? false }
    }

    public func features(of name: String) throws(DomainError) -> [String: String] { try record(name).features }

    public func feature(_ key: String, of name: String) throws(DomainError) -> String {
        guard let v = try record(name).features[key] else { throw .featureNotFound(domain: name, feature: key) }
        return v
    }

    /// admin.vm.feature.CheckWithTemplate: the domain's value, else its template chain's.
    public func featureWithTemplate(_ key: String, of name: String) throws(DomainError) -> String {
        var r = try record(name)
        for _ in 0..<8 {
            if let v = r.features[key] { return v }
            guard let t = templateRecord(r) else { break }
            r = t
        }
        throw .featureNotFound(domain: name, feature: key)
    }

    /// Labels sorted by index.
    public var allLabels: [Label] { labels.values.sorted { $0.index < $1.index } }

    public func label(_ name: String) throws(DomainError) -> Label {
        guard let l = labels[name] else { throw .labelNotFound(name) }
        return l
    }

    public func revisionsToKeep(volume: String, of name: String) throws(DomainError) -> Int {
        try record(name).revisionsToKeep[volume] ?? 1
    }
}
