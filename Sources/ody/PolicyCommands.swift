// `ody policy check|eval`: the policy as the daemon runs it, or files offline.
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Host
import Policy

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check qrexec policy files and evaluate calls against them.",
        discussion: """
            Policy files use the Qubes OS format (v5, R4.3 semantics). The daemon reads
            <state_dir>/policy.d first, then the configured policy_dirs, and reloads on change.

            Examples:
              ody policy check                              # the daemon's live policy
              ody policy check --policy-dir config/policy.d # files, offline
              ody policy eval qubes.Filecopy work personal --explain
              ody policy eval --policy-dir DIR --domains domains.json --requests requests.jsonl
            """,
        subcommands: [Check.self, Eval.self, Pending.self, Answer.self])

    struct Pending: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pending", abstract: "List calls waiting for an answer (policy action `ask`).",
            discussion: "Answer with `ody policy answer ID allow [TARGET]` or `ody policy answer ID deny`; unanswered calls are denied after ask_timeout.")
        @OptionGroup var client: ClientOptions
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() throws {
            let bytes = try client.call("admin.odyssey.policy.Pending")
            if json { print(String(decoding: bytes, as: UTF8.self)); return }
            let asks = try decodeJSON([PendingAskReply].self, bytes)
            if asks.isEmpty { print("no calls waiting"); return }
            for a in asks {
                let choices = a.choices.map { $0 == a.defaultTarget ? "\($0) (default)" : $0 }.joined(separator: ", ")
                print("\(a.id): \(a.source) -> \(a.requestedTarget) \(a.service); choices: \(choices); \(a.secondsLeft) s left")
            }
        }
    }

    struct Answer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "answer", abstract: "Answer a pending call: allow (to the default or a named target) or deny.",
            discussion: "Examples:\n  ody policy answer 3 allow personal\n  ody policy answer 3 allow      # the default target\n  ody policy answer 3 deny")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The id from `ody policy pending`.") var id: String
        @Argument(help: "allow or deny.") var decision: String
        @Argument(help: "With allow: the target (one of the choices).") var target: String?

        func validate() throws {
            guard decision == "allow" || decision == "deny" else { throw ValidationError("the answer is 'allow' or 'deny', not '\(decision)'") }
            if decision == "deny" && target != nil { throw ValidationError("deny takes no target") }
        }

        func run() throws {
            let payload = decision + (target.map { " " + $0 } ?? "")
            _ = try client.call("admin.odyssey.policy.Answer", argument: id, payload: Array(payload.utf8))
            print(decision == "deny" ? "denied \(id)" : "allowed \(id)" + (target.map { " to \($0)" } ?? ""))
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "check", 
            abstract: "Report load errors (FILE:LINE: message) and rules that can never apply.",
            discussion: "Exit status: 0 when the policy loads (warnings allowed), 1 on errors.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("policy-dir"), help: ArgumentHelp("Check these directories offline instead of the daemon's policy (repeatable; the first wins a basename clash).", valueName: "DIR"))
        var policyDirs: [String] = []
        @Option(name: .long, help: ArgumentHelp("DOMAINS.json to check ask rules against (offline only).", valueName: "FILE"))
        var domains: String?

        func run() throws {
            if policyDirs.isEmpty {
                let r = try decodeJSON(PolicyCheckReply.self, try client.call("admin.odyssey.policy.Check"))
                report(error: r.error, warnings: r.warnings, rules: r.rules, dirs: r.directories)
            } else {
                var system: PolicySystem?
                if let domains { system = try loadDomains(domains) }
                do {
                    let p = try Policy.load(directories: policyDirs)
                    report(error: nil, warnings: p.check(system: system), rules: p.ruleCount, dirs: policyDirs)
                } catch {
                    report(error: error.description, warnings: [], rules: 0, dirs: policyDirs)
                }
            }
        }

        func report(error: String?, warnings: [String], rules: Int, dirs: [String]) {
            for w in warnings { print("warning: \(w)") }
            if let error {
                printError(error)
                printError("policy NOT loaded: every call is denied until this is fixed")
                Glibc.exit(1)
            }
            print("policy ok: \(rules) rules from \(dirs.joined(separator: ", "))" + (warnings.isEmpty ? "" : ", \(warnings.count) warning(s)"))
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "eval", 
            abstract: "Decide one call against the live system, or a batch offline.",
            discussion: """
                Live: ody policy eval SERVICE[+ARG] SOURCE TARGET [--explain]
                Batch (no daemon needed): ody policy eval --policy-dir DIR [--policy-dir DIR2 ...]
                  --domains DOMAINS.json --requests REQUESTS.jsonl
                prints one JSON object per request: resolution, target, user, autostart, notify,
                rule (BASENAME:LINE or null), and for ask targets_for_ask and default_target. If the
                policy fails to load, the first line is {"policy_error": "PATH:LINE: message"}
                and every request is denied.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "SERVICE[+ARG] SOURCE TARGET (live mode).") var call: [String] = []
        @Flag(name: .long, help: "Also say why each earlier rule for the service did not match.") var explain = false
        @Option(name: .customLong("policy-dir"), help: ArgumentHelp("Policy directory for batch mode (repeatable).", valueName: "DIR"))
        var policyDirs: [String] = []
        @Option(name: .long, help: ArgumentHelp("Domain facts for batch mode.", valueName: "DOMAINS.json")) var domains: String?
        @Option(name: .long, help: ArgumentHelp("One request per line, for batch mode.", valueName: "REQUESTS.jsonl")) var requests: String?

        func validate() throws {
            let batch = domains != nil || requests != nil || !policyDirs.isEmpty
            if batch {
                guard !policyDirs.isEmpty, domains != nil, requests != nil else {
                    throw ValidationError("batch mode needs --policy-dir, --domains and --requests together")
                }
                guard call.isEmpty else { throw ValidationError("batch mode takes no SERVICE SOURCE TARGET arguments") }
                guard !explain else { throw ValidationError("--explain works in live mode only") }
            } else {
                guard call.count == 3 else { throw ValidationError("expected SERVICE[+ARG] SOURCE TARGET (or batch options; see --help)") }
            }
        }

        func run() throws {
            if let domains, let requests {
                let d = try readFile(domains), r = try readFile(requests)
                print(BatchEvaluator.run(policyDirectories: policyDirs, domainsJSON: d, requestsJSONL: r), terminator: "")
                return
            }
            let payload = call.joined(separator: " ") + (explain ? " explain" : "")
            let r = try decodeJSON(PolicyEvalReply.self, try client.call("admin.odyssey.policy.Eval", payload: Array(payload.utf8)))
            for line in r.explanation { print(line) }
            var out = "\(r.resolution)"
            if let t = r.target { out += " target=\(t)" }
            if r.resolution == "ask" {
                out += " choices=[\(r.targetsForAsk.joined(separator: ", "))]"
                if let d = r.defaultTarget { out += " default=\(d)" }
            }
            if let u = r.user { out += " user=\(u)" }
            if r.resolution != "deny" { out += " autostart=\(r.autostart ? "yes" : "no")" }
            out += " notify=\(r.notify ? "yes" : "no")"
            print(out)
            print("rule: \(r.rule ?? "none") (\(r.reason))")
        }
    }
}

func readFile(_ path: String) throws -> Data {
    guard let d = FileManager.default.contents(atPath: path) else {
        printError("ody: cannot read \(path)")
        throw ExitCode(1)
    }
    return d
}

func loadDomains(_ path: String) throws -> PolicySystem {
    do { return try BatchEvaluator.parseDomains(try readFile(path)) } catch let e as ExitCode { throw e } catch {
        printError("ody: \(path): \(error)")
        throw ExitCode(1)
    }
}
