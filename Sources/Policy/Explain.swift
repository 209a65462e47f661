// `ody policy eval --explain`: for each earlier rule of the service, the column that did not
// match; then the deciding rule and the decision.

extension Policy {
    /// One line per rule of the request's service (and `*` rules) read before the deciding one,
    /// saying why it did not match; then the matching rule, if any; then the decision.
    public func explain(_ request: PolicyRequest, in system: PolicySystem) -> [String] {
        let decision = evaluate(request, in: system)
        var lines: [String] = []
        guard !rules.isEmpty else {
            return ["no rules loaded", "decision: \(Policy.summary(decision))"]
        }
        let context: MatchContext
        switch makeContext(request, system: system) {
        case .failure(let refusal):
            return ["request refused before any rule is read: \(refusal.message)",
                    "decision: \(Policy.summary(decision))"]
        case .success(let made):
            context = made
        }
        var decidingRule: Int?
        if case .rule(let found) = firstMatch(context, useIndex: true) { decidingRule = found }
        let requestedTarget = Policy.describe(context.target, request: request)
        index.forEachCandidate(serviceId: context.serviceId, useIndex: true) { ruleIndex in
            let rule = rules[ruleIndex]
            if ruleIndex == decidingRule {
                lines.append("\(rule.location): matches: \(rule.text)")
                return false
            }
            let matcher = index.matchers[ruleIndex]
            if !Matcher.serviceAndArgumentMatch(matcher, context, serviceChecked: true) {
                lines.append("\(rule.location): argument \(request.argument) is not \(rule.argument ?? "*")")
            } else if !Matcher.matches(matcher.source, context.source) {
                lines.append("\(rule.location): source \(request.source) does not match \(rule.source)")
            } else {
                switch Matcher.targetMatch(matcher.target, context, location: rule.location) {
                case .refused(let refusal):
                    lines.append("\(rule.location): refused while matching the target: \(refusal.message)")
                    return false
                default:
                    lines.append("\(rule.location): target \(requestedTarget) does not match \(rule.target)")
                }
            }
            return true
        }
        if decidingRule == nil && lines.isEmpty { lines.append("no rule names service \(request.service)") }
        lines.append("decision: \(Policy.summary(decision))")
        return lines
    }

    private static func describe(_ target: Subject, request: PolicyRequest) -> String {
        target.kind == .defaultTarget && !request.target.isEmpty && request.target != "@default"
            ? "\(request.target) (unknown, read as @default)" : (request.target.isEmpty ? "@default" : request.target)
    }

    /// One line: the resolution and what goes with it.
    static func summary(_ decision: Decision) -> String {
        var parts = [decision.resolution.rawValue]
        switch decision.resolution {
        case .allow:
            parts.append("target=\(decision.target ?? "?")")
            parts.append("user=\(decision.user ?? "DEFAULT")")
            parts.append("autostart=\(decision.autostart ? "yes" : "no")")
        case .ask:
            parts.append("choices=\(decision.targetsForAsk.joined(separator: ","))")
            if let defaultTarget = decision.defaultTarget { parts.append("default_target=\(defaultTarget)") }
            parts.append("user=\(decision.user ?? "DEFAULT")")
        case .deny:
            break
        }
        parts.append("notify=\(decision.notify ? "yes" : "no")")
        if let rule = decision.rule { parts.append("rule=\(rule)") }
        return parts.joined(separator: " ") + " (\(decision.reason))"
    }
}
