// The committed differential corpus: policy sets, domain facts and requests drawn by our seeded
// generator, with the answers Qubes' own engine (qubes-core-qrexec 4.4.x, the R4.3 line) gave.
// Tests/Fixtures/policy-oracle/qubes_oracle.py explains the answer lines; `scripts/policy-oracle`
// regenerates the file.

import Foundation
@testable import Policy

struct OracleCorpus: Decodable {
    struct PolicySet: Decodable {
        /// Relative path -> text, written under a fresh `policy.d` (the system directory).
        let files: [String: String]
        /// The same for a runtime directory loaded before it (empty: none).
        let runtimeFiles: [String: String]
        let domains: [PolicyDomain]
        /// Qubes' load error, paths as `@DIR@/...`; nil when the set loads.
        let loadError: String?
        /// `[call, source, target, Qubes' answer]`.
        let requests: [[String]]

        enum CodingKeys: String, CodingKey {
            case files, domains, requests
            case loadError = "load_error"
            case runtimeFiles = "runtime_files"
        }
    }

    let qubesQrexec: String
    let seed: Int
    let sets: [PolicySet]

    enum CodingKeys: String, CodingKey {
        case sets, seed
        case qubesQrexec = "qubes_qrexec"
    }

    /// The committed corpus, or another draw named by ODYSSEY_POLICY_ORACLE_CASES
    /// (`scripts/policy-oracle --seed N --output FILE`).
    static let path = ProcessInfo.processInfo.environment["ODYSSEY_POLICY_ORACLE_CASES"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/policy-oracle/cases.json").standardized.path

    static func load() throws -> OracleCorpus {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder().decode(OracleCorpus.self, from: data)
    }
}

/// One Odyssey decision in the oracle's answer form (see qubes_oracle.py).
enum OracleAnswer {
    static func text(_ decision: Decision, directories: OracleDirectories) -> String {
        let location = decision.rulePath.map { " @\(relative($0, directories: directories)):\(decision.ruleLine ?? 0)" } ?? ""
        var extras = ""
        if let user = decision.user, !user.isEmpty { extras += " user=\(user)" }
        if !decision.autostart { extras += " noautostart" }
        if decision.notify { extras += " notify" }
        switch decision.resolution {
        case .allow:
            return "allow \(decision.target ?? "nil")\(extras)\(location)"
        case .ask:
            let preset = decision.defaultTarget.map { " default=\($0)" } ?? ""
            return "ask [\(decision.targetsForAsk.joined(separator: ","))]\(preset)\(extras)\(location)"
        case .deny:
            return "deny \(decision.notify ? "notify" : "quiet"): \(relative(decision.reason, directories: directories))"
        }
    }

    static func relative(_ text: String, directories: OracleDirectories) -> String {
        text.replacingOccurrences(of: directories.runtime, with: "@RUN@")
            .replacingOccurrences(of: directories.system, with: "@DIR@")
    }

    /// The choice the oracle approved in an ask answer (`... => CHOICE: ANSWER`).
    static func approvedChoice(in expected: String) -> String? {
        guard expected.hasPrefix("ask "), let arrow = expected.range(of: " => ") else { return nil }
        let rest = expected[arrow.upperBound...]
        return rest.range(of: ": ").map { String(rest[..<$0.lowerBound]) }
    }

    /// Does Odyssey's answer agree with Qubes'? `refused:` means Qubes failed with an exception
    /// the daemon turns into a dropped call: any deny agrees. An ask agrees when its line and
    /// the approval's answer do. Otherwise the whole line must match.
    static func agrees(expected: String, got: String) -> Bool {
        if expected.hasPrefix("refused:") { return got.hasPrefix("deny ") }
        if expected.hasPrefix("ask "), let arrow = expected.range(of: " => "), let ours = got.range(of: " => ") {
            return expected[..<arrow.lowerBound] == got[..<ours.lowerBound]
                && agrees(expected: String(expected[arrow.upperBound...]).afterChoice,
                          got: String(got[ours.upperBound...]).afterChoice)
        }
        return expected == got
    }

    /// The kind of a disagreement, for the summary: the verbs of both answers.
    static func kind(expected: String, got: String) -> String {
        func verb(_ text: String) -> String { String(text.prefix { $0 != " " && $0 != ":" }) }
        return "\(verb(expected)) -> \(verb(got))"
    }
}

/// Where one set's files were written: the runtime directory (read first) and the system one.
struct OracleDirectories {
    let runtime: String
    let system: String
}

private extension String {
    /// `CHOICE: ANSWER` -> `ANSWER`.
    var afterChoice: String {
        range(of: ": ").map { String(self[$0.upperBound...]) } ?? self
    }
}
