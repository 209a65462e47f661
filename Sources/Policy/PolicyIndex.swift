// Rules compiled for the hot path: every name, tag, type, service and argument interned to an
// integer at load, and rules grouped by service so a decision looks only at its own service's
// rules and the `*` rules.

/// Strings numbered in first-seen order.
struct InternTable: Sendable {
    /// The id of a string the policy never mentions; never equal to a real id.
    static let absent: Int32 = -2

    private(set) var ids: [String: Int32] = [:]
    private(set) var strings: [String] = []

    mutating func intern(_ text: String) -> Int32 {
        if let id = ids[text] { return id }
        let id = Int32(strings.count)
        ids[text] = id
        strings.append(text)
        return id
    }

    func id(_ text: String) -> Int32 { ids[text] ?? InternTable.absent }

    var isEmpty: Bool { strings.isEmpty }
}

/// A SOURCE or TARGET column with its strings replaced by interned ids.
enum CompiledToken: Sendable, Equatable {
    case wildcard
    case anyVM
    /// `@adminvm`, `dom0` and the all-zero UUID: they match each other.
    case admin
    case defaultTarget
    case dispVM
    case name(Int32)
    /// A `uuid:` name; the id is of the bare UUID.
    case uuid(Int32)
    case type(Int32)
    case tag(Int32)
    case dispVMTemplateName(Int32)
    case dispVMTemplateUUID(Int32)
    case dispVMTag(Int32)
    /// `@dispvm:...` in the SOURCE column: accepted by the grammar, matches no caller.
    case never
}

/// The matching part of a rule, small and contiguous for the scan.
struct RuleMatcher: Sendable {
    /// -1 for `*`.
    let service: Int32
    /// -1 for `*`.
    let argument: Int32
    let source: CompiledToken
    let target: CompiledToken
}

/// All interned tables and compiled rules of one policy. A class so that a decision passes one
/// reference around instead of retaining every table.
final class PolicyIndex: Sendable {
    static let anyValue: Int32 = -1

    let matchers: ContiguousArray<RuleMatcher>
    let services: InternTable
    let arguments: InternTable
    let names: InternTable
    let uuids: InternTable
    let types: InternTable
    let tags: InternTable
    /// Rule indices per service id, in rule order.
    let rulesByService: [[Int32]]
    /// Indices of the rules whose service is `*`, in rule order.
    let wildcardServiceRules: [Int32]

    init(rules: [PolicyRule]) {
        var services = InternTable(), arguments = InternTable(), names = InternTable()
        var uuids = InternTable(), types = InternTable(), tags = InternTable()

        func compile(_ token: PolicyToken, isSource: Bool) -> CompiledToken {
            switch token {
            case .wildcard: return .wildcard
            case .anyVM: return .anyVM
            case .adminVM: return .admin
            case .defaultTarget: return .defaultTarget
            case .dispVM: return .dispVM
            case .name(let name):
                if PolicyToken.isDom0Like(name) { return .admin }
                if name.hasPrefix("uuid:") { return .uuid(uuids.intern(PolicyDomain.bareUUID(name))) }
                return .name(names.intern(name))
            case .type(let value): return .type(types.intern(value))
            case .tag(let value): return .tag(tags.intern(value))
            case .dispVMTemplate(let value):
                if isSource { return .never }
                if value.hasPrefix("uuid:") { return .dispVMTemplateUUID(uuids.intern(PolicyDomain.bareUUID(value))) }
                return .dispVMTemplateName(names.intern(value))
            case .dispVMTag(let value):
                if isSource { return .never }
                return .dispVMTag(tags.intern(value))
            }
        }

        var matchers = ContiguousArray<RuleMatcher>()
        matchers.reserveCapacity(rules.count)
        var byService: [[Int32]] = []
        var wildcard: [Int32] = []
        for (index, rule) in rules.enumerated() {
            var serviceId = PolicyIndex.anyValue
            if let service = rule.service {
                serviceId = services.intern(service)
                if Int(serviceId) == byService.count { byService.append([]) }
                byService[Int(serviceId)].append(Int32(index))
            } else {
                wildcard.append(Int32(index))
            }
            let argumentId = rule.argument.map { arguments.intern($0) } ?? PolicyIndex.anyValue
            matchers.append(RuleMatcher(service: serviceId, argument: argumentId,
                                        source: compile(rule.source, isSource: true),
                                        target: compile(rule.target, isSource: false)))
        }
        self.matchers = matchers
        self.services = services
        self.arguments = arguments
        self.names = names
        self.uuids = uuids
        self.types = types
        self.tags = tags
        self.rulesByService = byService
        self.wildcardServiceRules = wildcard
    }

    /// The rules a request for `serviceId` can match, in rule order: that service's rules merged
    /// with the `*` rules. `useIndex: false` walks every rule (the plain first-match scan).
    @inline(__always)
    func forEachCandidate(serviceId: Int32, useIndex: Bool, reversed: Bool = false,
                          _ body: (Int) -> Bool) {
        guard useIndex else {
            if reversed {
                for index in matchers.indices.reversed() where !body(index) { return }
            } else {
                for index in matchers.indices where !body(index) { return }
            }
            return
        }
        let own: [Int32] = serviceId >= 0 ? rulesByService[Int(serviceId)] : []
        let shared = wildcardServiceRules
        if reversed {
            var ownIndex = own.count - 1, sharedIndex = shared.count - 1
            while ownIndex >= 0 || sharedIndex >= 0 {
                let next: Int32
                if sharedIndex < 0 || (ownIndex >= 0 && own[ownIndex] > shared[sharedIndex]) {
                    next = own[ownIndex]; ownIndex -= 1
                } else {
                    next = shared[sharedIndex]; sharedIndex -= 1
                }
                if !body(Int(next)) { return }
            }
        } else {
            var ownIndex = 0, sharedIndex = 0
            while ownIndex < own.count || sharedIndex < shared.count {
                let next: Int32
                if sharedIndex >= shared.count || (ownIndex < own.count && own[ownIndex] < shared[sharedIndex]) {
                    next = own[ownIndex]; ownIndex += 1
                } else {
                    next = shared[sharedIndex]; sharedIndex += 1
                }
                if !body(Int(next)) { return }
            }
        }
    }
}
