// The five Qubes domain classes and the Qubes name rules.

public enum DomainClass: String, CaseIterable, Sendable, Codable {
    case adminVM = "AdminVM"
    case templateVM = "TemplateVM"
    case appVM = "AppVM"
    case standaloneVM = "StandaloneVM"
    case dispVM = "DispVM"

    /// Accepts the Qubes class name exactly ("AppVM").
    public init?(qubesName: String) { self.init(rawValue: qubesName) }

    /// Classes that have a `template` property.
    public var hasTemplate: Bool { self == .appVM || self == .dispVM }
    /// Classes whose root volume persists across starts.
    public var persistentRoot: Bool { self == .templateVM || self == .standaloneVM }
    /// Classes whose private volume persists (DispVM: a snapshot discarded at stop).
    public var persistentPrivate: Bool { self != .dispVM && self != .adminVM }
    /// Classes that can be created through the store (AdminVM exists once, always).
    public var creatable: Bool { self != .adminVM }
}

public enum DomainName {
    public static let maxLength = 31
    /// Words that mean something else where a domain name goes (policy,
    /// properties, Xen), refused in any case: `Dom0` or `NONE` would read as
    /// the admin domain or "no domain" to a person, whatever the code thinks.
    static let reserved: Set<String> = ["none", "default", "domain-0", "dom0", "adminvm", "anyvm", "dispvm"]

    /// Throws a QubesValueError naming the rule the name breaks.
    public static func validate(_ name: String) throws(DomainError) {
        let u = Array(name.utf8)
        guard !u.isEmpty else { throw .value("domain name must not be empty") }
        guard u.count <= maxLength else {
            throw .value("domain name '\(name)' is longer than \(maxLength) characters")
        }
        guard isLetter(u[0]) else {
            throw .value("domain name '\(name)' must start with a letter (a-z, A-Z)")
        }
        for c in u where !(isLetter(c) || isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")) {
            throw .value("domain name '\(name)' may contain only a-z, A-Z, 0-9, '_', '.' and '-'")
        }
        guard !reserved.contains(name.lowercased()) else { throw .value("domain name '\(name)' is reserved") }
        guard !name.hasSuffix("-dm") else { throw .value("domain name '\(name)' must not end in '-dm'") }
    }

    static func isLetter(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
}

/// Tags: `[A-Za-z0-9_-]+`, used by policy as `@tag:X`.
public enum TagRules {
    /// Maintained by the store from the `vmm` property; never added or removed by hand.
    public static let isolationPrefix = "isolation-"
    /// Added at creation through the Admin API; only the admin domain may change it.
    public static let createdByPrefix = "created-by-"

    public static func validate(_ tag: String) throws(DomainError) {
        guard !tag.isEmpty, tag.utf8.count <= 255 else { throw .value("tag must be 1 to 255 characters: '\(tag)'") }
        for c in tag.utf8 where !(DomainName.isLetter(c) || DomainName.isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")) {
            throw .value("tag '\(tag)' may contain only A-Z, a-z, 0-9, '_' and '-'")
        }
    }
}

/// Feature keys: `[A-Za-z0-9_.-]+` (the characters qubesd accepts in a method
/// argument); values: any text without NUL.
public enum FeatureRules {
    public static func validate(key: String, value: String? = nil) throws(DomainError) {
        guard !key.isEmpty, key.utf8.count <= 255 else { throw .value("feature name must be 1 to 255 characters: '\(key)'") }
        for c in key.utf8 where !(DomainName.isLetter(c) || DomainName.isDigit(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")) {
            throw .value("feature name '\(key)' may contain only A-Z, a-z, 0-9, '_', '.' and '-'")
        }
        if let value, value.utf8.contains(0) { throw .value("feature '\(key)': value must not contain NUL") }
        if let value, key == preloadDispvmFeature {
            guard value.isEmpty || (Int(value).map { (0...maxPreloadDispvm).contains($0) } ?? false) else {
                throw .value("feature '\(key)': expected a whole number from 0 to \(maxPreloadDispvm), got '\(value)'")
            }
        }
    }

    /// Disposables kept started ahead of use from one template.
    public static let preloadDispvmFeature = "preload-dispvm-max"
    /// Each preloaded disposable is a running domain with its own memory and
    /// processes held for nobody yet: 64 of them started in 2 s from one
    /// delegate's setting (issue 11, finding 16). Qubes caps it by free memory;
    /// this is the fixed ceiling above that.
    public static let maxPreloadDispvm = 8
}

/// A Qubes-style UUID (random, version 4), lower-case text form.
public struct DomainUUID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let text: String
    public static let adminVM = DomainUUID(unchecked: "00000000-0000-0000-0000-000000000000")

    init(unchecked text: String) { self.text = text }

    public init?(_ text: String) {
        let u = Array(text.utf8)
        guard u.count == 36 else { return nil }
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 { if c != UInt8(ascii: "-") { return nil } }
            else if !(DomainName.isDigit(c) || (c >= 97 && c <= 102)) { return nil }
        }
        self.text = text
    }

    /// A random version-4 UUID.
    public static func random() -> DomainUUID {
        var g = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
        }
        return DomainUUID(unchecked: String(decoding: out, as: UTF8.self))
    }

    public var description: String { text }
    public static func < (a: DomainUUID, b: DomainUUID) -> Bool { a.text < b.text }
}
