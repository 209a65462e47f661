// One parsed policy line: what it matches and what it decides.

/// What a rule does when it is the first to match.
public enum ActionKind: String, Sendable {
    case allow, deny, ask
}

/// The action column and its `KEY=VALUE` parameters, with the reference's defaults applied.
public struct PolicyAction: Sendable, Equatable {
    public var kind: ActionKind
    /// `target=`: where an allowed call goes instead of the requested target, or the only
    /// choice an ask offers.
    public var redirect: PolicyToken?
    /// `default_target=` (ask only): the choice preselected in the prompt.
    public var defaultTarget: PolicyToken?
    /// `user=`: the account the service runs as; nil means the target's default user.
    public var user: String?
    /// `notify=`: defaults to yes for deny, no otherwise.
    public var notify: Bool
    /// `autostart=`: when no, a call to a halted target is refused instead of starting it.
    public var autostart: Bool

    public init(kind: ActionKind, redirect: PolicyToken? = nil, defaultTarget: PolicyToken? = nil,
                user: String? = nil, notify: Bool? = nil, autostart: Bool = true) {
        self.kind = kind
        self.redirect = redirect
        self.defaultTarget = defaultTarget
        self.user = user
        self.notify = notify ?? (kind == .deny)
        self.autostart = autostart
    }
}

/// One rule of the merged policy, in evaluation order.
public struct PolicyRule: Sendable {
    /// The file the rule came from, as printed in error messages (an included file is printed
    /// with its resolved absolute path, as the reference does).
    public let path: String
    public let line: Int
    /// nil means `*`.
    public let service: String?
    /// nil means `*`; otherwise starts with `+`.
    public let argument: String?
    public let source: PolicyToken
    public let target: PolicyToken
    public let action: PolicyAction
    /// "BASENAME:LINE", the form decisions report.
    public let label: String
    /// "PATH:LINE", the form messages use.
    public let location: String

    public init(path: String, line: Int, service: String?, argument: String?, source: PolicyToken,
                target: PolicyToken, action: PolicyAction) {
        self.init(path: path, basename: PythonText.basename(path), line: line, service: service, argument: argument,
                  source: source, target: target, action: action)
    }

    /// With the file's basename computed once per file rather than once per rule.
    init(path: String, basename: String, line: Int, service: String?, argument: String?, source: PolicyToken,
         target: PolicyToken, action: PolicyAction) {
        self.path = path
        self.line = line
        self.service = service
        self.argument = argument
        self.source = source
        self.target = target
        self.action = action
        self.label = "\(basename):\(line)"
        self.location = "\(path):\(line)"
    }

    /// The rule written back as a policy line (parameters in a fixed order).
    public var text: String {
        var fields = [service ?? "*", argument ?? "*", source.description, target.description,
                      action.kind.rawValue]
        if let redirect = action.redirect { fields.append("target=\(redirect)") }
        if let defaultTarget = action.defaultTarget { fields.append("default_target=\(defaultTarget)") }
        if let user = action.user { fields.append("user=\(user)") }
        return fields.joined(separator: " ")
    }
}
