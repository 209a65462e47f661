// `ody policy eval --policy-dir DIR ... --domains DOMAINS.json --requests REQUESTS.jsonl`:
// offline evaluation of many calls, one JSON object per line out.
import FoundationEssentials

/// The batch interface of issue 3.
///
/// Output, one line per request, in order, keys in this order:
/// `{"resolution": "allow"|"ask"|"deny", "target", "user", "autostart", "notify", "rule"}`, and
/// for ask also `"targets_for_ask"` (sorted) and `"default_target"`.
/// - `target`: the domain connected to for allow; null for ask and deny.
/// - `user`: the rule's `user=` for allow and ask; null when unset (the reference daemon prints
///   `user=DEFAULT` there, meaning the target's default user) and for deny.
/// - `autostart`: the rule's value for allow and ask; false for deny (nothing is started).
/// - `rule`: "BASENAME:LINE" of the deciding rule, also for a deny caused by an allow or ask
///   rule that matched but could not be carried out; null when no rule decided.
/// If the policy fails to load, the first line is `{"policy_error": "PATH:LINE: message"}`;
/// if DOMAINS.json cannot be read it is `{"domains_error": "..."}`; every request is then denied.
/// A request line that is not a JSON object with string `service` and `source` is denied.
/// JSON is written as Python's `json.dumps` writes it (`", "` and `": "`, non-ASCII escaped).
public enum BatchEvaluator {
    public static func run(policyDirectories: [String], domainsJSON: Data, requestsJSONL: Data) -> String {
        var output = ""
        let requests = parseRequests(requestsJSONL)
        let system: PolicySystem
        do {
            system = try parseDomains(domainsJSON)
        } catch {
            output += PythonJSON.object([("domains_error", .string("\(error)"))]) + "\n"
            for _ in requests { output += line(for: .deny(.refused("no domain list"))) }
            return output
        }
        let policy: Policy
        do {
            policy = try Policy.load(directories: policyDirectories)
        } catch {
            output += PythonJSON.object([("policy_error", .string(error.description))]) + "\n"
            for _ in requests { output += line(for: .deny(.policyNotLoaded(error))) }
            return output
        }
        for request in requests {
            switch request {
            case .success(let request): output += line(for: policy.evaluate(request, in: system))
            case .failure(let message): output += line(for: .deny(.refused(message)))
            }
        }
        return output
    }

    /// DOMAINS.json: `{"domains": {NAME: {"type": ..., "tags": [...], ...}}}`.
    public static func parseDomains(_ data: Data) throws -> PolicySystem {
        struct DomainsFile: Decodable {
            let domains: [String: PolicyDomain]
        }
        let file = try JSONDecoder().decode(DomainsFile.self, from: data)
        return PolicySystem(domains: file.domains.map { name, facts in
            var domain = facts
            domain.name = name
            return domain
        })
    }

    private struct RequestLine: Decodable {
        let service: String
        let argument: String?
        let source: String
        let target: String?
    }

    enum ParsedRequest {
        case success(PolicyRequest)
        case failure(String)
    }

    /// One request per non-blank line. Without `argument`, `service` may carry `SERVICE+ARG`.
    static func parseRequests(_ data: Data) -> [ParsedRequest] {
        let decoder = JSONDecoder()
        var requests: [ParsedRequest] = []
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if rawLine.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                let line = try decoder.decode(RequestLine.self, from: Data(rawLine))
                let request: PolicyRequest
                if let argument = line.argument {
                    request = PolicyRequest(service: line.service, argument: argument, source: line.source,
                                            target: line.target ?? "")
                } else {
                    request = PolicyRequest(call: line.service, source: line.source, target: line.target ?? "")
                }
                requests.append(.success(request))
            } catch {
                requests.append(.failure("malformed request line"))
            }
        }
        return requests
    }

    /// One decision as a JSON line.
    public static func line(for decision: Decision) -> String {
        var fields: [(String, PythonJSON.Value)] = [
            ("resolution", .string(decision.resolution.rawValue)),
            ("target", decision.resolution == .allow ? .optional(decision.target) : .null),
            ("user", decision.resolution == .deny ? .null : .optional(decision.user)),
            ("autostart", .bool(decision.resolution == .deny ? false : decision.autostart)),
            ("notify", .bool(decision.notify)),
            ("rule", .optional(decision.rule)),
        ]
        if decision.resolution == .ask {
            fields.append(("targets_for_ask", .strings(decision.targetsForAsk)))
            fields.append(("default_target", .optional(decision.defaultTarget)))
        }
        return PythonJSON.object(fields) + "\n"
    }
}

/// JSON text exactly as Python's `json.dumps` (default arguments) writes it.
enum PythonJSON {
    enum Value {
        case string(String)
        case bool(Bool)
        case null
        case strings([String])

        static func optional(_ text: String?) -> Value { text.map { .string($0) } ?? .null }
    }

    static func object(_ fields: [(String, Value)]) -> String {
        "{" + fields.map { quote($0.0) + ": " + encode($0.1) }.joined(separator: ", ") + "}"
    }

    static func encode(_ value: Value) -> String {
        switch value {
        case .string(let text): return quote(text)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .strings(let items): return "[" + items.map(quote).joined(separator: ", ") + "]"
        }
    }

    /// `ensure_ascii=True`: everything outside printable ASCII becomes `\uXXXX` (lowercase hex,
    /// surrogate pairs above U+FFFF).
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value >= 0x20 && scalar.value < 0x7F {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value <= 0xFFFF {
                    out += unicodeEscape(scalar.value)
                } else {
                    let offset = scalar.value - 0x10000
                    out += unicodeEscape(0xD800 + (offset >> 10)) + unicodeEscape(0xDC00 + (offset & 0x3FF))
                }
            }
        }
        return out + "\""
    }

    private static func unicodeEscape(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
