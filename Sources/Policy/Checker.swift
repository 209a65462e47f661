// `ody policy check` warnings: rules that can never decide anything, and ask rules with nothing
// to offer.

extension Policy {
    /// Warnings, one line each, prefixed `PATH:LINE: `:
    /// - a rule an earlier rule always matches first (`rule can never match: P:L always matches
    ///   first`), judged from the rule text alone so it holds for any set of domains;
    /// - a rule whose SOURCE is `@dispvm:...`, which no caller is;
    /// - an ask rule that can offer no target. With a system, every domain its SOURCE matches is
    ///   tried as caller (with its own argument, or each argument the service's rules name plus
    ///   an unnamed one); without, it is flagged only if no allow/ask rule of its service
    ///   reaches anything but `@default`.
    public func check(system: PolicySystem?) -> [String] {
        var warnings: [String] = []
        for (ruleIndex, rule) in rules.enumerated() {
            if case .never = index.matchers[ruleIndex].source {
                warnings.append("\(rule.location): rule can never match: source \(rule.source) never matches a caller")
                continue
            }
            if let shadow = shadowingRule(of: ruleIndex) {
                warnings.append("\(rule.location): rule can never match: "
                                + "\(rules[shadow].location) always matches first")
            }
        }
        for (ruleIndex, rule) in rules.enumerated() where rule.action.kind == .ask {
            let empty = system.map { offersNothing(ruleIndex, system: $0) } ?? offersNothingStructurally(ruleIndex)
            if empty { warnings.append("\(rule.location): ask rule can offer no target") }
        }
        return warnings
    }

    /// Earlier rules of the same service (or `*`), in order.
    private func earlierCandidates(of ruleIndex: Int) -> [Int] {
        var candidates: [Int] = []
        let serviceId = index.matchers[ruleIndex].service
        // A `*` rule can only be shadowed by another `*` rule: pass a service no rule names.
        index.forEachCandidate(serviceId: serviceId >= 0 ? serviceId : InternTable.absent, useIndex: true) { other in
            guard other < ruleIndex else { return false }
            candidates.append(other)
            return true
        }
        return candidates
    }

    private func shadowingRule(of ruleIndex: Int) -> Int? {
        let later = rules[ruleIndex]
        return earlierCandidates(of: ruleIndex).first { earlierIndex in
            let earlier = rules[earlierIndex]
            return (earlier.argument == nil || earlier.argument == later.argument)
                && Policy.covers(earlier.source, later.source)
                && Policy.covers(earlier.target, later.target)
        }
    }

    /// True when every value `narrow` matches is matched by `wide`, whatever the domains.
    static func covers(_ wide: PolicyToken, _ narrow: PolicyToken) -> Bool {
        func isDom0(_ token: PolicyToken) -> Bool { token == .adminVM || token.isDom0LikeName }
        if wide == .wildcard || wide == narrow { return true }
        if isDom0(wide) && isDom0(narrow) { return true }
        guard wide == .anyVM else { return false }
        switch narrow {
        case .anyVM, .defaultTarget, .dispVM, .dispVMTemplate, .dispVMTag: return true
        case .name: return !narrow.isDom0LikeName
        default: return false
        }
    }

    private func offersNothingStructurally(_ ruleIndex: Int) -> Bool {
        let askRule = rules[ruleIndex]
        if let redirect = askRule.action.redirect {
            return !askRule.action.autostart && redirect.description.hasPrefix("@dispvm")
        }
        var reachesSomething = false
        index.forEachCandidate(serviceId: index.matchers[ruleIndex].service, useIndex: true) { other in
            let rule = rules[other]
            let argumentsOverlap = rule.argument == nil || askRule.argument == nil || rule.argument == askRule.argument
            guard rule.action.kind != .deny, argumentsOverlap else { return true }
            if (rule.action.redirect ?? rule.target) != .defaultTarget {
                reachesSomething = true
                return false
            }
            return true
        }
        return !reachesSomething
    }

    /// Tries the rule as every caller it matches; true if none would be offered a choice.
    private func offersNothing(_ ruleIndex: Int, system: PolicySystem) -> Bool {
        let askRule = rules[ruleIndex]
        let matcher = index.matchers[ruleIndex]
        var serviceIds: [Int32] = [matcher.service]
        if matcher.service < 0 {
            serviceIds = [InternTable.absent] + (0..<Int32(index.rulesByService.count))
        }
        var triedAny = false
        for serviceId in serviceIds {
            var argumentIds: Set<Int32> = [matcher.argument]
            if matcher.argument < 0 {
                argumentIds = [InternTable.absent]
                index.forEachCandidate(serviceId: serviceId, useIndex: true) { other in
                    if index.matchers[other].argument >= 0 { argumentIds.insert(index.matchers[other].argument) }
                    return true
                }
            }
            for domain in system.domains {
                let source = Subject.source(domain.name, system: system, policy: index)
                guard Matcher.matches(matcher.source, source) else { continue }
                for argumentId in argumentIds {
                    triedAny = true
                    let context = MatchContext(system: system, serviceId: serviceId, argumentId: argumentId,
                                               source: source, target: Subject(kind: .defaultTarget),
                                               defaultDispVM: .unset, sourceText: domain.name,
                                               targetText: "")
                    if offersSomething(askRule, context: context) { return false }
                }
            }
        }
        return triedAny
    }

    private func offersSomething(_ askRule: PolicyRule, context: MatchContext) -> Bool {
        do throws(Refusal) {
            if let redirect = askRule.action.redirect {
                return !(try fixedChoice(redirect, autostart: askRule.action.autostart, system: context.system,
                                         location: askRule.location)).isEmpty
            }
            let collected = try AskCollection.collect(policy: self, context: context, useIndex: true)
            return !(try AskCollection.finish(collected, context: context, autostart: askRule.action.autostart,
                                              location: askRule.location)).isEmpty
        } catch {
            return true  // a refusal is reported by evaluation, not as "nothing to offer"
        }
    }
}
