// Does one rule column match one request value? Integers only: every string was interned at load
// or looked up once per request.

/// The outcome of matching a TARGET column.
enum TargetMatch {
    case no
    case yes
    /// The reference fails while deciding this rule; the whole call is refused and matching
    /// does not go on to later rules.
    case refused(Refusal)
}

/// Everything about one request that the rule scan needs, computed once.
struct MatchContext {
    let system: PolicySystem
    let serviceId: Int32
    let argumentId: Int32
    let source: Subject
    let target: Subject
    /// Only computed when the target is `@dispvm` (the only case that reads it).
    let defaultDispVM: DefaultDispVM
    /// The source as the caller's transport named it (the reference's loopback test compares it).
    let sourceText: String
    /// The requested target as the caller wrote it (an allow answers it in that form).
    let targetText: String
}

enum Matcher {
    /// SERVICE and ARGUMENT columns. `serviceChecked` is true when the index already picked
    /// rules of this service.
    @inline(__always)
    static func serviceAndArgumentMatch(_ rule: RuleMatcher, _ context: MatchContext, serviceChecked: Bool) -> Bool {
        if !serviceChecked && rule.service >= 0 && rule.service != context.serviceId { return false }
        return rule.argument < 0 || rule.argument == context.argumentId
    }

    /// A SOURCE column, or a TARGET column for values that do not depend on `@dispvm`.
    @inline(__always)
    static func matches(_ token: CompiledToken, _ value: Subject) -> Bool {
        switch token {
        case .wildcard: return true
        case .anyVM: return value.kind != .dom0 && value.kind != .adminKeyword
        case .admin: return value.kind == .dom0 || value.kind == .adminKeyword
        case .defaultTarget: return value.kind == .defaultTarget
        case .dispVM: return value.kind == .dispVM
        case .name(let id): return value.kind == .named && value.nameId == id
        case .uuid(let id): return (value.kind == .named || value.kind == .dom0) && value.uuidId == id
        case .type(let id):
            return (value.kind == .named || value.kind == .dom0) && value.domain != nil && value.typeId == id
        case .tag(let id):
            return (value.kind == .named || value.kind == .dom0) && value.domain != nil && value.tagIds.contains(id)
        case .dispVMTemplateName(let id): return value.kind == .dispVMTemplate && value.nameId == id
        case .dispVMTemplateUUID(let id): return value.kind == .dispVMTemplate && value.uuidId == id
        case .dispVMTag(let id): return value.kind == .dispVMTemplate && value.tagIds.contains(id)
        case .never: return false
        }
    }

    /// A TARGET column. `@dispvm:X` and `@dispvm:@tag:T` meeting a request for `@dispvm` look
    /// up the source's `default_dispvm`; where that lookup fails in the reference, the call is
    /// refused outright.
    @inline(__always)
    static func targetMatch(_ token: CompiledToken, _ context: MatchContext, location: @autoclosure () -> String)
        -> TargetMatch {
        guard context.target.kind == .dispVM else {
            return matches(token, context.target) ? .yes : .no
        }
        switch token {
        case .dispVMTemplateName(let id):
            // The reference compares "@dispvm:" + default_dispvm with the rule's text as strings.
            switch context.defaultDispVM {
            case .unset:
                return .refused(Refusal(noDefaultDispVM(context, location: location())))
            case .missing(_, let nameId, _):
                return nameId == id ? .yes : .no
            case .existing(let template):
                return template.nameId == id ? .yes : .no
            }
        case .dispVMTemplateUUID:
            // `@dispvm:uuid:U` never equals "@dispvm:" + a name as a string: no match, but the
            // lookup of an unset default_dispvm fails first in the reference.
            if case .unset = context.defaultDispVM {
                return .refused(Refusal(noDefaultDispVM(context, location: location())))
            }
            return .no
        case .dispVMTag(let id):
            switch context.defaultDispVM {
            case .unset:
                return .no  // the reference finds no template and moves on
            case .missing(let name, _, _):
                return .refused(Refusal("default_dispvm \(PythonText.repr(name)) of \(context.sourceText) does not "
                                        + "exist (needed by \(location()))"))
            case .existing(let template):
                guard let index = template.domain, context.system.domains[index].templateForDispvms else { return .no }
                return template.tagIds.contains(id) ? .yes : .no
            }
        default:
            return matches(token, context.target) ? .yes : .no
        }
    }

    private static func noDefaultDispVM(_ context: MatchContext, location: String) -> String {
        "@dispvm requested but \(context.sourceText) has no default_dispvm (needed by \(location))"
    }
}
