import XCTest
@testable import Policy

final class GoldenTableTests: XCTestCase {
    func testTableIsLargeEnough() {
        XCTAssertGreaterThanOrEqual(GoldenCases.all.count, 150)
    }

    func testGoldenDecisions() {
        var policies: [String: Policy] = [:]
        var failures: [String] = []
        for golden in GoldenCases.all {
            let policy = policies[golden.policy] ?? Fixtures.policy(golden.policy)
            policies[golden.policy] = policy
            let request = PolicyRequest(call: golden.call, source: golden.source, target: golden.target)
            let indexed = policy.evaluate(request, in: Fixtures.system)
            let scanned = policy.evaluate(request, in: Fixtures.system, useIndex: false)
            let got = Fixtures.summarize(indexed)
            if got != golden.expected {
                failures.append("""
                    policy: \(golden.policy.replacingOccurrences(of: "\n", with: " | "))
                    request: \(golden.call) \(golden.source) -> \(golden.target.isEmpty ? "''" : golden.target) \
                    \(golden.note.isEmpty ? "" : "(\(golden.note))")
                    expected: \(golden.expected)
                    got:      \(got)  [\(indexed.reason)]
                    """)
            }
            XCTAssertEqual(indexed, scanned, "index and plain scan disagree for \(golden.call) \(golden.source) -> \(golden.target)")
        }
        XCTAssert(failures.isEmpty, "\(failures.count) golden cases failed:\n" + failures.joined(separator: "\n\n"))
    }

    func testRuleLabelsUseBasenameAndLine() {
        let policy = Fixtures.policy("\n# comment\nsvc * @anyvm @anyvm allow")
        let decision = policy.evaluate(PolicyRequest(call: "svc", source: "work", target: "vault"), in: Fixtures.system)
        XCTAssertEqual(decision.rule, "test.policy:3")
        XCTAssertEqual(decision.rulePath, "/golden/test.policy")
        XCTAssertEqual(decision.reason, "allowed by policy /golden/test.policy:3")
    }

    func testDenyReasonsUseTheReferenceWords() {
        let policy = Fixtures.policy("svc * @anyvm vault deny\nsvc * @anyvm @anyvm allow\nask * @anyvm @default ask")
        func reason(_ call: String, _ target: String, source: String = "work") -> String {
            policy.evaluate(PolicyRequest(call: call, source: source, target: target), in: Fixtures.system).reason
        }
        XCTAssertEqual(reason("svc", "vault"), "denied by policy /golden/test.policy:1")
        XCTAssertEqual(reason("other", "vault"), "no matching rule found")
        XCTAssertEqual(reason("svc", ""), "policy define 'allow' action at /golden/test.policy:2 but no target is "
                       + "specified by caller or policy")
        XCTAssertEqual(reason("svc", "@dispvm", source: "vault"), "policy define 'allow' action to @dispvm at "
                       + "/golden/test.policy:2 but no DispVM base is set for this VM")
        XCTAssertEqual(reason("svc", "work"), "loopback qrexec connection not supported")
        XCTAssertEqual(reason("svc", "@dispvm:vault"), "not a template for dispvm: vault")
        XCTAssertEqual(reason("svc", "@anyvm"), "<unknown>:0: invalid intendedtarget token: '@anyvm'")
        XCTAssertEqual(reason("ask", ""), "policy define 'ask' action at /golden/test.policy:3 but no target is "
                       + "available to choose from")
    }

    func testArgumentWithoutPlusIsRefused() {
        let policy = Fixtures.policy("* * @anyvm @anyvm allow")
        let decision = policy.evaluate(PolicyRequest(service: "svc", argument: "x", source: "work", target: "vault"),
                                       in: Fixtures.system)
        XCTAssertEqual(decision.resolution, .deny)
    }

    func testSplitCall() {
        XCTAssertEqual(PolicyRequest.split(call: "svc").argument, "+")
        XCTAssertEqual(PolicyRequest.split(call: "svc+").argument, "+")
        XCTAssertEqual(PolicyRequest.split(call: "svc+a+b").service, "svc")
        XCTAssertEqual(PolicyRequest.split(call: "svc+a+b").argument, "+a+b")
        XCTAssertEqual(PolicyRequest(service: "svc", argument: "", source: "a", target: "b").argument, "+")
    }
}
