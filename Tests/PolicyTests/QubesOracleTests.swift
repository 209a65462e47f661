import Foundation
import XCTest
@testable import Policy

/// Odyssey's engine against Qubes' own answers (Tests/Fixtures/policy-oracle/cases.json): every
/// request of every generated policy set must get the same decision, and every invalid set the
/// same load error text. A disagreement prints the request, the policy, Qubes' answer and ours.
final class QubesOracleTests: XCTestCase {
    func testCorpusIsLargeEnough() throws {
        let corpus = try OracleCorpus.load()
        XCTAssertGreaterThanOrEqual(corpus.sets.count, 400)
        XCTAssertGreaterThanOrEqual(corpus.sets.reduce(0) { $0 + $1.requests.count }, 10_000)
    }

    func testDecisionsAgreeWithQubes() throws {
        let corpus = try OracleCorpus.load()
        let scratch = TemporaryDirectory()
        defer { scratch.cleanup() }
        var requests = 0, agreed = 0, approvals = 0, loadErrorsAgreed = 0, invalidSets = 0
        var kinds: [String: Int] = [:]
        var report: [String] = []
        for (number, policySet) in corpus.sets.enumerated() {
            let directories = write(policySet, into: scratch, number: number)
            let policy: Policy
            do {
                policy = try Policy.load(directories: (policySet.runtimeFiles.isEmpty ? [] : [directories.runtime])
                                                      + [directories.system])
                if let expected = policySet.loadError {
                    report.append("set \(number): Qubes refuses the policy (\(expected)); Odyssey loads it")
                }
            } catch {
                policy = Policy.failed(error)
                let got = OracleAnswer.relative(error.description, directories: directories)
                if policySet.loadError == got { loadErrorsAgreed += 1 } else {
                    report.append("set \(number): load error\n  Qubes:   \(policySet.loadError ?? "(loads)")\n  Odyssey: \(got)\n"
                                  + policyText(policySet))
                }
            }
            if policySet.loadError != nil { invalidSets += 1 }
            let system = PolicySystem(domains: policySet.domains)
            for fields in policySet.requests {
                let (call, source, target, expected) = (fields[0], fields[1], fields[2], fields[3])
                let request = PolicyRequest(call: call, source: source, target: target)
                let decision = policy.evaluate(request, in: system)
                var got = OracleAnswer.text(decision, directories: directories)
                if decision.resolution == .ask, let choice = OracleAnswer.approvedChoice(in: expected) {
                    let approved = decision.approving(choice, source: source, in: system)
                    approvals += 1
                    got += " => \(choice): " + OracleAnswer.text(approved, directories: directories)
                }
                requests += 1
                // A set Qubes cannot load denies everything; only the deny itself is compared.
                let same = policySet.loadError != nil ? decision.resolution == .deny
                    : OracleAnswer.agrees(expected: expected, got: got)
                XCTAssertEqual(decision, policy.evaluate(request, in: system, useIndex: false),
                               "index and plain scan disagree in set \(number)")
                if same { agreed += 1; continue }
                kinds[OracleAnswer.kind(expected: expected, got: got), default: 0] += 1
                if report.count < 60 {
                    report.append("""
                        set \(number): \(call) from \(source) to \(target.isEmpty ? "''" : target)
                          Qubes:   \(expected)
                          Odyssey: \(got)
                        \(policyText(policySet))
                        """)
                }
            }
        }
        let summary = "Qubes \(corpus.qubesQrexec) oracle: \(agreed)/\(requests) requests agree "
            + "(\(approvals) of them asks whose approval was compared too), "
            + "\(loadErrorsAgreed)/\(invalidSets) load errors identical, over \(corpus.sets.count) policy sets"
        print(summary)
        if !kinds.isEmpty {
            print("disagreements by kind: " + kinds.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }
                .joined(separator: ", "))
        }
        XCTAssert(report.isEmpty, summary + "\n\n" + report.joined(separator: "\n\n"))
    }

    /// Writes the set's files under `<scratch>/setN/policy.d` (and `runtime.d`) and returns the
    /// directories, with symlinks resolved as Qubes' paths are.
    private func write(_ policySet: OracleCorpus.PolicySet, into scratch: TemporaryDirectory,
                       number: Int) -> OracleDirectories {
        let system = scratch.makeDirectory("set\(number)/policy.d")
        let runtime = scratch.makeDirectory("set\(number)/runtime.d")
        for (relative, text) in policySet.files { scratch.write("set\(number)/policy.d/\(relative)", text) }
        for (relative, text) in policySet.runtimeFiles { scratch.write("set\(number)/runtime.d/\(relative)", text) }
        func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
        return OracleDirectories(runtime: resolved(runtime), system: resolved(system))
    }

    private func policyText(_ policySet: OracleCorpus.PolicySet) -> String {
        var lines: [String] = []
        for (prefix, files) in [("@RUN@/", policySet.runtimeFiles), ("@DIR@/", policySet.files)] {
            for name in files.keys.sorted() {
                lines.append("  --- \(prefix)\(name)")
                for (offset, line) in files[name]!.split(separator: "\n", omittingEmptySubsequences: false)
                    .dropLast().enumerated() {
                    lines.append("  \(offset + 1): \(line)")
                }
            }
        }
        let facts = policySet.domains.map { domain in
            var text = "\(domain.name)(\(domain.type),\(domain.powerState)"
            if domain.templateForDispvms { text += ",dvm-template" }
            if domain.internal { text += ",internal" }
            if let dvm = domain.defaultDispvm { text += ",default_dispvm=\(dvm)" }
            if !domain.tags.isEmpty { text += ",tags=\(domain.tags.joined(separator: "+"))" }
            return text + ",uuid:\(domain.uuid ?? "-"))"
        }
        lines.append("  domains: " + facts.joined(separator: " "))
        return lines.joined(separator: "\n")
    }
}
