// What the policy decided for one call.

public enum Resolution: String, Sendable {
    case allow, ask, deny
}

/// Why a decision came out as it did; the text is built only when someone reads it, so the
/// allow path allocates no message.
enum DecisionReason: Sendable, Equatable {
    case allowed(location: String)
    case asked(location: String)
    case deniedByRule(location: String)
    case noMatchingRule
    case policyNotLoaded(PolicyLoadError?)
    case refused(String)

    var text: String {
        switch self {
        case .allowed(let location): return "allowed by policy \(location)"
        case .asked(let location): return "ask by policy \(location)"
        case .deniedByRule(let location): return "denied by policy \(location)"
        case .noMatchingRule: return "no matching rule found"
        case .policyNotLoaded(let error):
            return "policy failed to load, denying everything" + (error.map { ": \($0.description)" } ?? "")
        case .refused(let message): return message
        }
    }
}

/// The decision for one call.
///
/// - `allow`: `target` is the reference's answer (the target as written: `uuid:...` stays),
///   `targetName` the domain to connect to (`dom0`, a name, or `@dispvm:TEMPLATE` for a new
///   disposable); `user` is nil when the rule sets none (the reference daemon prints
///   `user=DEFAULT` there: the target's default user).
/// - `ask`: `targetsForAsk` lists the choices, sorted in code-point order; `defaultTarget` is
///   the preselected one, if any. The broker turns the user's answer into an allow or a deny
///   with `approving(_:source:)` / `declined()`.
/// - `deny`: `target` and `user` are nil; `notify` says whether to show a notification.
///
/// `rule` is "BASENAME:LINE" of the deciding rule (nil when no rule decided).
public struct Decision: Sendable, Equatable {
    public var resolution: Resolution
    /// For `allow`: the target as the reference answers it, in the form the request or the
    /// rule wrote it (`uuid:UUID`, `@dispvm:uuid:UUID` stay so; every spelling of dom0 is `dom0`).
    public var target: String?
    /// For `allow`: the same target by name, what the broker connects to (`dom0`, a domain's
    /// name, or `@dispvm:TEMPLATE-NAME`).
    public var targetName: String?
    public var user: String?
    public var autostart: Bool
    public var notify: Bool
    public var rule: String?
    /// The deciding rule's file, as loaded.
    public var rulePath: String?
    public var ruleLine: Int?
    public var targetsForAsk: [String]
    public var defaultTarget: String?
    var why: DecisionReason

    /// Human-readable reason, in the reference's words where it has them.
    public var reason: String { why.text }

    init(resolution: Resolution, target: String? = nil, user: String? = nil, autostart: Bool = false,
         notify: Bool, rule: PolicyRule? = nil, targetsForAsk: [String] = [], defaultTarget: String? = nil,
         why: DecisionReason) {
        self.resolution = resolution
        self.target = target
        self.targetName = target
        self.user = user
        self.autostart = autostart
        self.notify = notify
        self.rule = rule?.label
        self.rulePath = rule?.path
        self.ruleLine = rule?.line
        self.targetsForAsk = targetsForAsk
        self.defaultTarget = defaultTarget
        self.why = why
    }

    /// A refusal. Refusals outside a deny rule notify, as the reference's AccessDenied does by
    /// default; `rule` is the rule that was being applied, if any.
    static func deny(_ why: DecisionReason, rule: PolicyRule? = nil, notify: Bool = true) -> Decision {
        Decision(resolution: .deny, notify: notify, rule: rule, why: why)
    }

    private func denied(_ message: String, notify: Bool = true) -> Decision {
        var decision = self
        decision.resolution = .deny
        decision.target = nil
        decision.targetName = nil
        decision.user = nil
        decision.autostart = false
        decision.notify = notify
        decision.targetsForAsk = []
        decision.defaultTarget = nil
        decision.why = .refused(message)
        return decision
    }

    /// The user approved an ask with `choice`, which must be one offered. As in the reference,
    /// the answer keeps the choice as written (`dom0` for its spellings), a choice equal to the
    /// source's name as given is a loopback and refused, and a choice naming no domain (`@dispvm`
    /// from `ask target=@dispvm`, an unchecked `target=`) is refused, where the reference fails.
    /// With the system snapshot, `targetName` is the domain's name to connect to.
    public func approving(_ choice: String, source: String, in system: PolicySystem? = nil) -> Decision {
        guard resolution == .ask else { return self }
        guard targetsForAsk.contains(choice) else { return denied("target \(choice) is not a valid choice") }
        if choice == "@dispvm" {
            return denied("ask choice @dispvm cannot be approved: it names no disposable template")
        }
        if choice == source { return denied("loopback qrexec connection not supported") }
        let target = PolicyToken.isDom0Like(choice) ? "dom0" : choice
        var name = target
        if let system, target != "dom0" {
            let isDispVM = target.hasPrefix("@dispvm:")
            let domainText = isDispVM ? String(target.dropFirst("@dispvm:".count)) : target
            guard let index = system.domainIndex(of: domainText) else { return denied("invalid target: \(choice)") }
            name = (isDispVM ? "@dispvm:" : "") + system.domains[index].name
        }
        var decision = self
        decision.why = .allowed(location: "\(rulePath ?? "?"):\(ruleLine ?? 0)")
        decision.resolution = .allow
        decision.target = target
        decision.targetName = name
        decision.targetsForAsk = []
        decision.defaultTarget = nil
        return decision
    }

    /// The user refused an ask (or no prompt is available): denied, notifying as the rule says.
    public func declined() -> Decision {
        guard resolution == .ask else { return self }
        return denied("denied by the user \(rulePath ?? "?"):\(ruleLine ?? 0)", notify: notify)
    }
}
