// From a request to a decision: normalize, find the first matching rule, apply its action.

extension Policy {
    /// Decides one call. Pure: reads only the policy, the request and the system snapshot.
    ///
    /// `useIndex: false` scans every rule in order (the plain first-match scan) instead of only
    /// the rules of the request's service; the decision is the same, only slower.
    public func evaluate(_ request: PolicyRequest, in system: PolicySystem, useIndex: Bool = true) -> Decision {
        if rules.isEmpty, let loadError { return .deny(.policyNotLoaded(loadError)) }
        // The request is checked before any rule is read, as the reference builds it first.
        let context: MatchContext
        switch makeContext(request, system: system) {
        case .success(let made): context = made
        case .failure(let refusal): return .deny(.refused(refusal.message))
        }
        if rules.isEmpty { return .deny(.noMatchingRule) }
        switch firstMatch(context, useIndex: useIndex) {
        case .none:
            return .deny(.noMatchingRule)
        case .refused(let refusal):
            return .deny(.refused(refusal.message))
        case .rule(let ruleIndex):
            return apply(rules[ruleIndex], context: context, useIndex: useIndex)
        }
    }

    /// The request as rules see it, or why it is refused before any rule is read.
    func makeContext(_ request: PolicyRequest, system: PolicySystem) -> Result<MatchContext, Refusal> {
        let target: Subject
        switch Subject.target(request.target, system: system, policy: index) {
        case .success(let subject): target = subject
        case .failure(let refusal): return .failure(refusal)
        }
        let source = Subject.source(request.source, system: system, policy: index)
        let defaultDispVM = target.kind == .dispVM
            ? DefaultDispVM.of(source: source, system: system, policy: index) : .unset
        let argument = request.argument.isEmpty ? "+" : request.argument
        guard argument.unicodeScalars.first == "+" else {
            return .failure(Refusal("argument \(PythonText.repr(argument)) does not start with +"))
        }
        return .success(MatchContext(system: system, serviceId: index.services.id(request.service),
                                     argumentId: index.arguments.id(argument), source: source, target: target,
                                     defaultDispVM: defaultDispVM, sourceText: request.source,
                                     targetText: request.target))
    }

    enum FirstMatch {
        case none
        case rule(Int)
        case refused(Refusal)
    }

    /// The first rule matching all four columns.
    func firstMatch(_ context: MatchContext, useIndex: Bool) -> FirstMatch {
        var result = FirstMatch.none
        let index = self.index
        index.forEachCandidate(serviceId: context.serviceId, useIndex: useIndex) { ruleIndex in
            let matcher = index.matchers[ruleIndex]
            guard Matcher.serviceAndArgumentMatch(matcher, context, serviceChecked: useIndex),
                  Matcher.matches(matcher.source, context.source) else { return true }
            switch Matcher.targetMatch(matcher.target, context, location: self.rules[ruleIndex].location) {
            case .no:
                return true
            case .yes:
                result = .rule(ruleIndex)
                return false
            case .refused(let refusal):
                result = .refused(refusal)
                return false
            }
        }
        return result
    }

    private func apply(_ rule: PolicyRule, context: MatchContext, useIndex: Bool) -> Decision {
        switch rule.action.kind {
        case .deny:
            return .deny(.deniedByRule(location: rule.location), rule: rule, notify: rule.action.notify)
        case .allow:
            return allow(rule, context: context)
        case .ask:
            return ask(rule, context: context, useIndex: useIndex)
        }
    }

    // MARK: allow

    private func allow(_ rule: PolicyRule, context: MatchContext) -> Decision {
        // `target` is the reference's answer: the form the request or the redirect gave
        // (`uuid:...` and `@dispvm:uuid:...` stay as written); `name` is the domain to connect to.
        let target: String
        let name: String
        let targetDomain: Int?
        switch allowedTarget(rule, context: context) {
        case .failure(let refusal): return .deny(.refused(refusal.message), rule: rule)
        case .success(let found): (target, targetDomain) = found
        }
        let system = context.system
        if !rule.action.autostart {
            let wouldStart: Bool
            if PolicyToken.isDom0Like(target) {
                wouldStart = false
            } else if target.hasPrefix("@dispvm") {
                wouldStart = true  // a disposable is always started
            } else if let index = targetDomain {
                wouldStart = system.domains[index].powerState != "Running"
            } else {
                // The reference looks the target up unconditionally and fails when it is missing.
                return .deny(.refused("autostart=no: \(target) is not a known domain (\(rule.location))"), rule: rule)
            }
            if wouldStart {
                return .deny(.refused("target \(target) is denied because it would require autostart"), rule: rule,
                             notify: rule.action.notify)
            }
        }
        // The reference compares the two strings: a call to oneself spelled differently (a
        // `uuid:` form, `dom0` from `uuid:0...`) is decided like any other call.
        if target == context.sourceText { return .deny(.refused("loopback qrexec connection not supported"), rule: rule) }
        if PolicyToken.isDom0Like(target) {
            name = "dom0"
        } else if target.hasPrefix("@dispvm:") {
            // The reference reads the template's facts here and fails when there is none.
            let template = String(target.dropFirst("@dispvm:".count))
            guard let index = system.domainIndex(of: template) else {
                return .deny(.refused("@dispvm:\(template): no such domain to start a disposable from "
                                      + "(\(rule.location))"), rule: rule)
            }
            name = "@dispvm:" + system.domains[index].name
        } else if let index = targetDomain {
            name = system.domains[index].name
        } else {
            return .deny(.refused("\(target) is not a known domain (\(rule.location))"), rule: rule)
        }
        var decision = Decision(resolution: .allow, target: PolicyToken.isDom0Like(target) ? "dom0" : target,
                                user: rule.action.user, autostart: rule.action.autostart,
                                notify: rule.action.notify, rule: rule, why: .allowed(location: rule.location))
        decision.targetName = name
        return decision
    }

    /// Where an allow rule sends the call: its redirect if it has one (applied after matching, so
    /// deny rules for the new target are not consulted), else the requested target, in the form
    /// it was written. Either is verified like a caller's request; `@dispvm` becomes the
    /// source's `default_dispvm` (not checked here) and `@adminvm` becomes `dom0`.
    private func allowedTarget(_ rule: PolicyRule, context: MatchContext) -> Result<(String, Int?), Refusal> {
        let system = context.system
        func noTarget() -> Refusal {
            Refusal("policy define 'allow' action at \(rule.location) but no target is specified by caller or policy")
        }
        func dispVM() -> Result<(String, Int?), Refusal> {
            guard let template = dispVMTemplate(of: context) else {
                return .failure(Refusal("policy define 'allow' action to @dispvm at \(rule.location) "
                                        + "but no DispVM base is set for this VM"))
            }
            return .success((template, nil))
        }
        guard let redirect = rule.action.redirect else {
            switch context.target.kind {
            case .defaultTarget:
                return .failure(noTarget())
            case .adminKeyword:
                return .success(("dom0", system.dom0Index))
            case .dom0:
                return .success((context.targetText, system.dom0Index))
            case .dispVM:
                return dispVM()
            case .dispVMTemplate, .named:
                // Normalization gives both kinds a domain; a missing one is refused, not trapped on.
                guard let index = context.target.domain else { return .failure(noTarget()) }
                return .success((context.targetText, index))
            }
        }
        switch redirect {
        case .adminVM:
            return .success(("dom0", system.dom0Index))
        case .dispVM:
            return dispVM()
        case .dispVMTemplate(let name):
            guard let index = system.domainIndex(of: name), system.domains[index].templateForDispvms else {
                return .failure(Refusal("not a template for dispvm: \(name)"))
            }
            return .success(("@dispvm:" + name, nil))
        case .name(let name):
            guard let index = system.domainIndex(of: name) else {
                if PolicyToken.isDom0Like(name) { return .success((name, nil)) }
                return .failure(noTarget())
            }
            return .success((name, index))
        default:
            return .failure(noTarget())  // the grammar admits no other redirect
        }
    }

    /// `@dispvm` for this source: "@dispvm:" + its `default_dispvm` as the facts spell it (the
    /// reference does not check it here), nil if unset.
    private func dispVMTemplate(of context: MatchContext) -> String? {
        guard let sourceIndex = context.source.domain,
              let name = context.system.domains[sourceIndex].defaultDispvm else { return nil }
        return "@dispvm:" + name
    }

    // MARK: ask

    private func ask(_ rule: PolicyRule, context: MatchContext, useIndex: Bool) -> Decision {
        let system = context.system
        let location = rule.location
        var choices: [String]
        do {
            if let redirect = rule.action.redirect {
                choices = try fixedChoice(redirect, autostart: rule.action.autostart, system: system,
                                          location: location)
            } else {
                let collected = try AskCollection.collect(policy: self, context: context, useIndex: useIndex)
                choices = try AskCollection.finish(collected, context: context, autostart: rule.action.autostart,
                                                   location: location)
            }
        } catch {
            return .deny(.refused(error.message), rule: rule)
        }
        if choices.isEmpty {
            let message = "policy define 'ask' action at \(location) but no target is available to choose from"
            return .deny(.refused(message), rule: rule)
        }
        var defaultTarget: String?
        switch rule.action.defaultTarget {
        case .none: defaultTarget = nil
        case .dispVM?: defaultTarget = dispVMTemplate(of: context)
        case .adminVM?: defaultTarget = "dom0"
        case .name(let name)? where PolicyToken.isDom0Like(name): defaultTarget = "dom0"
        case let token?: defaultTarget = token.description
        }
        if let candidate = defaultTarget, !choices.contains(candidate) { defaultTarget = nil }
        return Decision(resolution: .ask, user: rule.action.user, autostart: rule.action.autostart,
                        notify: rule.action.notify, rule: rule, targetsForAsk: choices,
                        defaultTarget: defaultTarget, why: .asked(location: location))
    }

    /// `ask target=X` offers exactly X, as written (any spelling of dom0 as `dom0`); it is not
    /// checked. With `autostart=no` it must be dom0 or running.
    func fixedChoice(_ redirect: PolicyToken, autostart: Bool, system: PolicySystem,
                     location: String) throws(Refusal) -> [String] {
        let isDom0 = redirect == .adminVM || redirect.isDom0LikeName
        let choice = isDom0 ? "dom0" : redirect.description
        guard !autostart, !isDom0 else { return [choice] }
        if choice.hasPrefix("@dispvm") { return [] }
        // The reference looks the domain up unconditionally here and fails if it is missing.
        guard let index = system.domainIndex(of: choice) else {
            throw Refusal("ask target=\(choice) autostart=no: no such domain (\(location))")
        }
        return system.domains[index].powerState == "Running" ? [choice] : []
    }
}
