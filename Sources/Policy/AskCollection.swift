// The choices an `ask` rule without `target=` offers: every rule of the call's service, argument
// and source, walked from the last to the first (target column ignored); allow and ask rules add
// what they could reach, deny rules take it away. Done on bit sets over the system's sorted
// choice list.

/// The choices collected so far.
struct CollectedChoices {
    var set: ChoiceSet
    /// The keyword `@dispvm`, resolved through the source's `default_dispvm` at the end.
    var dispVMKeyword = false
    /// The keyword `@adminvm`, which becomes `dom0` at the end: a separate entry until then, so
    /// a deny of `dom0` does not take away an `@adminvm` (nor the reverse), as in the reference.
    var adminKeyword = false
}

enum AskCollection {
    /// Adds (or, for a deny rule, removes) what `token` expands to.
    /// `dom0` and the all-zero UUID are the choice "dom0"; the keyword `@adminvm` is kept apart.
    static func apply(_ token: PolicyToken, removing: Bool, to choices: inout CollectedChoices,
                      system: PolicySystem, location: @autoclosure () -> String) throws(Refusal) {
        func single(_ position: Int?) {
            guard let position else { return }
            if removing { choices.set.remove(position) } else { choices.set.insert(position) }
        }
        func many(_ set: ChoiceSet?) {
            guard let set else { return }
            if removing { choices.set.subtract(set) } else { choices.set.formUnion(set) }
        }
        switch token {
        case .wildcard:
            many(system.everyName)
            many(system.everyTemplate)
            choices.dispVMKeyword = !removing
        case .anyVM:
            many(system.nonAdminNames)
            many(system.everyTemplate)
            choices.dispVMKeyword = !removing
        case .adminVM:
            choices.adminKeyword = !removing
        case .defaultTarget:
            break
        case .dispVM:
            choices.dispVMKeyword = !removing
        case .name(let name):
            if PolicyToken.isDom0Like(name) {
                single(system.dom0Position)
            } else if let index = system.domainIndex(of: name) {
                single(system.namePosition[index])
            }
        case .type(let value):
            many(system.namesByType[value])
        case .tag(let value):
            many(system.namesByTag[value])
        case .dispVMTemplate(let name):
            // The reference reads the named domain unconditionally and fails when it is missing.
            guard let index = system.domainIndex(of: name) else {
                throw Refusal("ask collection: @dispvm:\(name) names no existing domain (\(location()))")
            }
            single(system.templatePosition[index])
        case .dispVMTag(let value):
            many(system.templatesByTag[value])
        }
    }

    /// Walks the candidate rules backwards and returns the collected set (before the final
    /// keyword, source and internal-domain adjustments).
    static func collect(policy: Policy, context: MatchContext, useIndex: Bool) throws(Refusal) -> CollectedChoices {
        var choices = CollectedChoices(set: context.system.emptyChoices)
        var failure: Refusal?
        let index = policy.index
        index.forEachCandidate(serviceId: context.serviceId, useIndex: useIndex, reversed: true) { ruleIndex in
            let matcher = index.matchers[ruleIndex]
            guard Matcher.serviceAndArgumentMatch(matcher, context, serviceChecked: useIndex),
                  Matcher.matches(matcher.source, context.source) else { return true }
            let rule = policy.rules[ruleIndex]
            let isDeny = rule.action.kind == .deny
            let token = isDeny ? rule.target : (rule.action.redirect ?? rule.target)
            do throws(Refusal) {
                try apply(token, removing: isDeny, to: &choices, system: context.system, location: rule.location)
            } catch {
                failure = error
                return false
            }
            return true
        }
        if let failure { throw failure }
        return choices
    }

    /// The final list, in the reference's order of steps: `@dispvm` through `default_dispvm`,
    /// `@adminvm` as `dom0`, minus the source, minus internal domains (and their `@dispvm:`),
    /// then with `autostart=no` only dom0 and running domains; sorted.
    static func finish(_ collected: CollectedChoices, context: MatchContext, autostart: Bool,
                       location: String) throws(Refusal) -> [String] {
        let system = context.system
        var set = collected.set
        var extra: [String] = []
        if collected.dispVMKeyword, let sourceIndex = context.source.domain,
           let name = system.domains[sourceIndex].defaultDispvm {
            // The reference offers "@dispvm:" + default_dispvm unchecked, then fails reading
            // the facts of a domain that does not exist.
            guard let index = system.domainIndex(of: name) else {
                throw Refusal("ask: default_dispvm \(PythonText.repr(name)) of \(context.sourceText) names no "
                              + "existing domain (\(location))")
            }
            if let position = system.templatePosition[index], system.domains[index].name == name {
                set.insert(position)
            } else if !system.domains[index].internal {
                extra.append("@dispvm:" + name)  // not a template: offered all the same
            }
        }
        if collected.adminKeyword { set.insert(system.dom0Position) }
        if context.source.kind == .dom0 || context.source.kind == .adminKeyword {
            set.remove(system.dom0Position)
        } else if let sourceIndex = context.source.domain {
            set.remove(system.namePosition[sourceIndex])
        }
        set.subtract(system.internalChoices)
        if !autostart {
            let keepsDom0 = set.contains(system.dom0Position)  // dom0 needs no start
            set.formIntersection(system.runningChoices)
            if keepsDom0 { set.insert(system.dom0Position) }
            extra.removeAll()  // only "@dispvm:..." can be here, and a disposable always starts
        }
        var names: [String] = []
        set.forEach { names.append(system.choiceNames[$0]) }
        if !extra.isEmpty {
            names.append(contentsOf: extra.filter { !names.contains($0) })
            names.sort(by: PolicyFiles.codePointLess)
        }
        return names
    }
}
