// admin.odyssey.policy.*: the live policy, for `ody policy check|eval`.
import FoundationEssentials
import Policy

public struct PolicyEvalReply: Codable, Sendable {
    public var resolution: String
    public var target: String?
    public var user: String?
    public var autostart: Bool
    public var notify: Bool
    public var rule: String?
    public var targetsForAsk: [String]
    public var defaultTarget: String?
    public var reason: String
    public var explanation: [String]
}

public struct PolicyCheckReply: Codable, Sendable {
    public var directories: [String]
    public var rules: Int
    public var error: String?
    public var warnings: [String]
}

/// One pending `ask`, as `ody policy pending` shows it.
public struct PendingAskReply: Codable, Sendable {
    public var id: String
    public var source: String
    public var service: String
    public var requestedTarget: String
    public var choices: [String]
    public var defaultTarget: String?
    public var secondsLeft: Int
}

struct PolicyMethods {
    unowned let daemon: Daemon

    /// Answering an ask is the user's act where the user sits (dom0; later the
    /// GUI domain that shows the prompt, as Qubes' guivm does), never a calling
    /// domain's: a grant let a delegate answer its own asks and the vault's
    /// consent ask (issue 11, finding 10). Pending lists other domains' calls,
    /// so it goes with Answer.
    static let usersAct = CallerRule.adminDomainOnly(why: "answering an ask is the user's act, in the admin domain")

    func methods() -> [AdminMethod] {
        [
            AdminMethod(name: "admin.odyssey.policy.Check", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [daemon] _ in
                let svc = daemon.policy
                svc.reloadIfChanged(reason: "policy check")
                let p = svc.policy
                let reply = PolicyCheckReply(directories: svc.directories, rules: p.ruleCount, error: p.loadError?.description,
                                             warnings: p.loadError == nil ? p.check(system: svc.system) : [])
                return JSON.encode(reply)
            },
            // Payload: "SERVICE[+ARG] SOURCE TARGET [explain]"
            AdminMethod(name: "admin.odyssey.policy.Eval", takesArgument: false, takesPayload: true, destMustBeAdmin: true) { [daemon] r throws(AdminError) in
                guard let text = String(validating: r.payload, as: UTF8.self) else { throw AdminError("QubesValueError", "payload is not UTF-8") }
                let f = text.split(separator: " ").map(String.init)
                guard f.count == 3 || (f.count == 4 && f[3] == "explain") else {
                    throw AdminError("QubesValueError", "expected 'SERVICE[+ARG] SOURCE TARGET [explain]'")
                }
                let svc = daemon.policy
                svc.reloadIfChanged(reason: "policy eval")
                let request = PolicyRequest(call: f[0], source: f[1], target: f[2])
                let system = svc.system
                let p = svc.policy
                let d = p.evaluate(request, in: system)
                let reply = PolicyEvalReply(resolution: d.resolution.rawValue, target: d.target, user: d.user, autostart: d.autostart,
                                            notify: d.notify, rule: d.rule, targetsForAsk: d.targetsForAsk, defaultTarget: d.defaultTarget,
                                            reason: d.reason, explanation: f.count == 4 ? p.explain(request, in: system) : [])
                return JSON.encode(reply)
            },
            AdminMethod(name: "admin.odyssey.policy.Pending", takesArgument: false, takesPayload: false, destMustBeAdmin: true,
                        callers: PolicyMethods.usersAct) { [daemon] _ in
                JSON.encode(daemon.broker.pending().map {
                    PendingAskReply(id: $0.id, source: $0.source, service: $0.service, requestedTarget: $0.requestedTarget,
                                    choices: $0.choices, defaultTarget: $0.defaultTarget, secondsLeft: Int($0.secondsLeft))
                })
            },
            // Argument: the ask's id. Payload: "allow", "allow TARGET" or "deny".
            AdminMethod(name: "admin.odyssey.policy.Answer", takesArgument: true, takesPayload: true, destMustBeAdmin: true,
                        callers: PolicyMethods.usersAct) { [daemon] r throws(AdminError) in
                guard let text = String(validating: r.payload, as: UTF8.self) else { throw AdminError("QubesValueError", "payload is not UTF-8") }
                let words = text.split(separator: " ").map(String.init)
                do throws(OdysseyError) {
                    switch (words.first, words.count) {
                    case ("allow", 1): try daemon.broker.answer(id: r.argument, allow: nil)
                    case ("allow", 2): try daemon.broker.answer(id: r.argument, allow: words[1])
                    case ("deny", 1): try daemon.broker.deny(id: r.argument)
                    default: throw OdysseyError(.invalid, "answer with 'allow', 'allow TARGET' or 'deny'")
                    }
                } catch { throw error.adminError }
                return []
            },
        ]
    }
}
