// A call to decide, and its normalization: the requested target is checked and turned into the
// value rules are matched against, the way the reference's IntendedTarget does it.

/// One qrexec call: `service+argument` from `source` to `target`. The source comes from the
/// transport (which domain's channel the call arrived on), never from the caller's words.
public struct PolicyRequest: Sendable, Hashable {
    public var service: String
    /// Starts with `+`; `+` alone is the empty argument.
    public var argument: String
    public var source: String
    /// As the caller wrote it: a name, `uuid:...`, `@default`, `@adminvm`, `@dispvm`,
    /// `@dispvm:NAME`, or empty (= `@default`).
    public var target: String

    public init(service: String, argument: String = "+", source: String, target: String) {
        self.service = service
        self.argument = argument.isEmpty ? "+" : argument
        self.source = source
        self.target = target
    }

    /// Builds a request from the wire form `SERVICE+ARGUMENT`.
    public init(call: String, source: String, target: String) {
        let (service, argument) = PolicyRequest.split(call: call)
        self.init(service: service, argument: argument, source: source, target: target)
    }

    /// Splits `SERVICE+ARGUMENT` at the first `+`; without `+` the argument is `+` (so `svc`
    /// and `svc+` are the same call).
    public static func split(call: String) -> (service: String, argument: String) {
        guard let plus = call.unicodeScalars.firstIndex(of: "+") else { return (call, "+") }
        return (String(call.unicodeScalars[..<plus]), String(call.unicodeScalars[plus...]))
    }
}

/// A request's source or target as rules see it: what kind of value it is, and the interned
/// ids of its name, UUID, type and tags (ids of this policy; absent when the policy never
/// mentions them, so they compare unequal to every rule).
struct Subject {
    enum Kind: UInt8 {
        /// A plain name or `uuid:` (an existing domain, or for a source possibly an unknown one).
        case named
        /// `dom0` or the all-zero UUID: dom0 spelled as a name.
        case dom0
        /// The keyword `@adminvm`.
        case adminKeyword
        case defaultTarget
        case dispVM
        /// `@dispvm:NAME` naming an existing disposable template.
        case dispVMTemplate
    }

    var kind: Kind
    /// The system's index of the domain, if there is one.
    var domain: Int? = nil
    var nameId: Int32 = InternTable.absent
    var uuidId: Int32 = InternTable.absent
    var typeId: Int32 = InternTable.absent
    var tagIds: [Int32] = []

    init(kind: Kind) { self.kind = kind }

    /// An existing domain, with the ids rules compare against.
    init(kind: Kind, domain index: Int, system: PolicySystem, policy: PolicyIndex) {
        self.kind = kind
        self.domain = index
        let facts = system.domains[index]
        nameId = policy.names.id(facts.name)
        if let uuid = facts.uuid, !policy.uuids.isEmpty { uuidId = policy.uuids.id(uuid) }
        if !policy.types.isEmpty { typeId = policy.types.id(facts.type) }
        if !policy.tags.isEmpty && !facts.tags.isEmpty {
            for tag in facts.tags {
                let id = policy.tags.id(tag)
                if id != InternTable.absent { tagIds.append(id) }
            }
        }
    }

    /// A name no domain has (only a source can be one): it still equals the same name in a rule.
    init(unknownName text: String, policy: PolicyIndex) {
        kind = .named
        if text.hasPrefix("uuid:") {
            uuidId = policy.uuids.id(PolicyDomain.bareUUID(text))
        } else {
            nameId = policy.names.id(text)
        }
    }

    /// The request's source. Never refused: an unknown source simply matches fewer rules.
    static func source(_ text: String, system: PolicySystem, policy: PolicyIndex) -> Subject {
        if text == "@adminvm" { return Subject(kind: .adminKeyword) }
        let isDom0 = PolicyToken.isDom0Like(text)
        if let index = system.domainIndex(of: text) {
            return Subject(kind: isDom0 ? .dom0 : .named, domain: index, system: system, policy: policy)
        }
        return isDom0 ? Subject(kind: .dom0) : Subject(unknownName: text, policy: policy)
    }

    /// The requested target, or why it is refused before any rule is read.
    static func target(_ text: String, system: PolicySystem, policy: PolicyIndex) -> Result<Subject, Refusal> {
        if text.isEmpty { return .success(Subject(kind: .defaultTarget)) }
        if text == "@adminvm" { return .success(Subject(kind: .adminKeyword)) }
        if PolicyToken.isDom0Like(text) {
            guard let index = system.domainIndex(of: text) else { return .success(Subject(kind: .dom0)) }
            return .success(Subject(kind: .dom0, domain: index, system: system, policy: policy))
        }
        if text.unicodeScalars.first == "@" || text == "*" {
            let token: PolicyToken
            do {
                token = try PolicyToken.parse(text, context: .intendedTarget)
            } catch {
                // The reference raises its syntax error without a file: "<unknown>:0: ".
                return .failure(Refusal("<unknown>:0: " + error.message))
            }
            switch token {
            case .defaultTarget: return .success(Subject(kind: .defaultTarget))
            case .dispVM: return .success(Subject(kind: .dispVM))
            case .dispVMTemplate(let name):
                guard let index = system.domainIndex(of: name), system.domains[index].templateForDispvms else {
                    return .failure(Refusal("not a template for dispvm: \(name)"))
                }
                return .success(Subject(kind: .dispVMTemplate, domain: index, system: system, policy: policy))
            default:
                // The intended-target context admits no other token; kept for completeness.
                return .failure(Refusal("<unknown>:0: invalid intendedtarget token: \(PythonText.repr(text))"))
            }
        }
        // A caller cannot probe which domains exist: an unknown name is just "no target given".
        guard let index = system.domainIndex(of: text) else { return .success(Subject(kind: .defaultTarget)) }
        return .success(Subject(kind: .named, domain: index, system: system, policy: policy))
    }
}

/// Why a call is refused outside the ordinary "denied by policy" path.
struct Refusal: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Where `@dispvm` leads for this source: its `default_dispvm`.
enum DefaultDispVM {
    /// The source has no `default_dispvm` (or is not a known domain).
    case unset
    /// `default_dispvm` names no existing domain.
    case missing(name: String, nameId: Int32, uuidId: Int32)
    /// `default_dispvm` names an existing domain (a template or not).
    case existing(Subject)

    static func of(source: Subject, system: PolicySystem, policy: PolicyIndex) -> DefaultDispVM {
        guard let sourceIndex = source.domain, let name = system.domains[sourceIndex].defaultDispvm else {
            return .unset
        }
        guard let index = system.domainIndex(of: name) else {
            let unknown = Subject(unknownName: name, policy: policy)
            return .missing(name: name, nameId: unknown.nameId, uuidId: unknown.uuidId)
        }
        return .existing(Subject(kind: .dispVMTemplate, domain: index, system: system, policy: policy))
    }
}
