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

struct PolicyMethods {
    unowned let daemon: Daemon

    func methods() -> [AdminMethod] {
        [
            AdminMethod(name: "admin.odyssey.policy.Check", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [daemon] _ in
                let svc = daemon.policy
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
                let request = PolicyRequest(call: f[0], source: f[1], target: f[2])
                let system = svc.system
                let p = svc.policy
                let d = p.evaluate(request, in: system)
                let reply = PolicyEvalReply(resolution: d.resolution.rawValue, target: d.target, user: d.user, autostart: d.autostart,
                                            notify: d.notify, rule: d.rule, targetsForAsk: d.targetsForAsk, defaultTarget: d.defaultTarget,
                                            reason: d.reason, explanation: f.count == 4 ? p.explain(request, in: system) : [])
                return JSON.encode(reply)
            },
        ]
    }
}
