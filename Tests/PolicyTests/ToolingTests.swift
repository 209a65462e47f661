import XCTest
@testable import Policy

/// Ask answers, `check` warnings and `explain` lines.
final class ToolingTests: XCTestCase {
    private func request(_ call: String, _ source: String, _ target: String) -> PolicyRequest {
        PolicyRequest(call: call, source: source, target: target)
    }

    // MARK: ask answers

    func testApprovingAnAsk() {
        let policy = Fixtures.policy("svc * @anyvm @anyvm ask user=bob")
        let asked = policy.evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        XCTAssertEqual(asked.resolution, .ask)
        let approved = asked.approving("vault", source: "work")
        XCTAssertEqual(Fixtures.summarize(approved), "allow vault user=bob @1")
        XCTAssertEqual(approved.reason, "allowed by policy /golden/test.policy:1")
        XCTAssertEqual(asked.approving("@dispvm:default-dvm", source: "work").target, "@dispvm:default-dvm")
        XCTAssertEqual(asked.approving("dom0", source: "work").resolution, .deny, "not offered")
        XCTAssertEqual(asked.approving("hidden", source: "work").resolution, .deny, "internal, not offered")
        let declined = asked.declined()
        XCTAssertEqual(declined.resolution, .deny)
        XCTAssertEqual(declined.reason, "denied by the user /golden/test.policy:1")
    }

    func testApprovingFixedChoices() {
        let dispvm = Fixtures.policy("svc * @anyvm @anyvm ask target=@dispvm")
            .evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        XCTAssertEqual(dispvm.targetsForAsk, ["@dispvm"])
        XCTAssertEqual(dispvm.approving("@dispvm", source: "work").resolution, .deny, "the reference fails here")
        let admin = Fixtures.policy("svc * @anyvm @anyvm ask target=@adminvm")
            .evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        XCTAssertEqual(admin.targetsForAsk, ["dom0"], "Qubes offers dom0 in any spelling as dom0")
        XCTAssertEqual(admin.approving("dom0", source: "work").target, "dom0")
        let loop = Fixtures.policy("svc * @anyvm @anyvm ask target=work")
            .evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        XCTAssertEqual(loop.targetsForAsk, ["work"])
        XCTAssertEqual(loop.approving("work", source: "work").reason, "loopback qrexec connection not supported")
        let byUUID = Fixtures.policy("svc * @anyvm @anyvm ask target=uuid:\(Fixtures.uuid(1))")
            .evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        // Qubes compares the strings (4.4.2 oracle): approving oneself by uuid is not a loopback,
        // and the answer keeps the uuid; the broker connects to the name.
        let selfByUUID = byUUID.approving("uuid:\(Fixtures.uuid(1))", source: "work", in: Fixtures.system)
        XCTAssertEqual(selfByUUID.resolution, .allow)
        XCTAssertEqual(selfByUUID.target, "uuid:\(Fixtures.uuid(1))")
        XCTAssertEqual(selfByUUID.targetName, "work")
        let approved = byUUID.approving("uuid:\(Fixtures.uuid(1))", source: "vault", in: Fixtures.system)
        XCTAssertEqual(approved.target, "uuid:\(Fixtures.uuid(1))")
        XCTAssertEqual(approved.targetName, "work")
        let ghost = Fixtures.policy("svc * @anyvm @anyvm ask target=ghost")
            .evaluate(request("svc", "work", "vault"), in: Fixtures.system)
        XCTAssertEqual(ghost.approving("ghost", source: "work", in: Fixtures.system).resolution, .deny)
    }

    func testChoicesAreInCodePointOrder() {
        let system = PolicySystem(domains: ["alpha", "Zeta", "beta-1", "beta.2", "beta_3", "9lives", "src"].map {
            PolicyDomain(name: $0, templateForDispvms: $0 == "Zeta", powerState: "Running")
        })
        let decision = Fixtures.policy("svc * @anyvm @anyvm ask")
            .evaluate(request("svc", "src", "alpha"), in: system)
        XCTAssertEqual(decision.targetsForAsk, ["9lives", "@dispvm:Zeta", "Zeta", "alpha", "beta-1", "beta.2", "beta_3"])
    }

    // MARK: check

    func testShadowedRules() {
        let policy = Fixtures.policy("""
            svc * @anyvm @anyvm allow
            svc +a work vault deny
            svc * @anyvm dom0 allow
            * * @anyvm @anyvm deny
            svc * * * deny
            other +x @tag:a @default deny
            * * * * allow
            other +x @tag:a @default deny
            svc * @adminvm dom0 allow
            """)
        let warnings = policy.check(system: nil)
        let path = "/golden/test.policy"
        XCTAssertTrue(warnings.contains("\(path):2: rule can never match: \(path):1 always matches first"), "\(warnings)")
        XCTAssertFalse(warnings.contains { $0.hasPrefix("\(path):3:") }, "@anyvm does not cover dom0")
        XCTAssertFalse(warnings.contains { $0.hasPrefix("\(path):4:") })
        XCTAssertFalse(warnings.contains { $0.hasPrefix("\(path):5:") }, "* source includes dom0")
        XCTAssertFalse(warnings.contains { $0.hasPrefix("\(path):6:") })
        XCTAssertFalse(warnings.contains { $0.hasPrefix("\(path):7:") })
        XCTAssertTrue(warnings.contains("\(path):8: rule can never match: \(path):6 always matches first"), "\(warnings)")
        XCTAssertTrue(warnings.contains("\(path):9: rule can never match: \(path):5 always matches first"), "\(warnings)")
    }

    func testDom0SpellingsShadowEachOther() {
        let policy = Fixtures.policy("svc * @anyvm dom0 deny\nsvc * @anyvm @adminvm allow")
        XCTAssertEqual(policy.check(system: nil),
                       ["/golden/test.policy:2: rule can never match: /golden/test.policy:1 always matches first"])
    }

    func testSourceDispVMNeverMatches() {
        let warnings = Fixtures.policy("svc * @dispvm:x @anyvm allow").check(system: nil)
        XCTAssertEqual(warnings, ["/golden/test.policy:1: rule can never match: source @dispvm:x never matches a caller"])
    }

    func testAskWithNothingToOffer() {
        let policy = Fixtures.policy("""
            svc * @anyvm @default ask
            svc2 * @anyvm @anyvm ask target=@dispvm autostart=no
            svc3 * @anyvm @anyvm ask
            svc4 * @anyvm @tag:nosuch ask
            svc5 * @anyvm vault ask autostart=no
            svc6 * @anyvm @default ask
            svc6 * @anyvm personal allow
            """)
        let structural = policy.check(system: nil)
        XCTAssertTrue(structural.contains("/golden/test.policy:1: ask rule can offer no target"), "\(structural)")
        XCTAssertTrue(structural.contains("/golden/test.policy:2: ask rule can offer no target"))
        XCTAssertFalse(structural.contains("/golden/test.policy:3: ask rule can offer no target"))
        XCTAssertFalse(structural.contains("/golden/test.policy:6: ask rule can offer no target"))
        let withSystem = policy.check(system: Fixtures.system)
        for line in [1, 2, 4, 5] {
            XCTAssertTrue(withSystem.contains("/golden/test.policy:\(line): ask rule can offer no target"),
                          "line \(line): \(withSystem)")
        }
        for line in [3, 6] {
            XCTAssertFalse(withSystem.contains("/golden/test.policy:\(line): ask rule can offer no target"))
        }
    }

    func testCleanPolicyHasNoWarnings() {
        let policy = Fixtures.policy("svc * work vault allow\nsvc * @anyvm @anyvm deny\n* * @anyvm @anyvm ask")
        XCTAssertEqual(policy.check(system: Fixtures.system), [])
    }

    // MARK: explain

    func testExplainSaysWhyEarlierRulesDidNotMatch() {
        let policy = Fixtures.policy("""
            svc +a @anyvm @anyvm deny
            svc * personal @anyvm deny
            other * @anyvm @anyvm deny
            svc * @anyvm sys-net allow
            * * @anyvm vault allow
            svc * @anyvm @anyvm allow
            """)
        let lines = policy.explain(request("svc+b", "work", "vault"), in: Fixtures.system)
        let path = "/golden/test.policy"
        XCTAssertEqual(lines, [
            "\(path):1: argument +b is not +a",
            "\(path):2: source work does not match personal",
            "\(path):4: target vault does not match sys-net",
            "\(path):5: matches: * * @anyvm vault allow",
            "decision: allow target=vault user=DEFAULT autostart=yes notify=no rule=test.policy:5 "
                + "(allowed by policy \(path):5)",
        ])
    }

    func testExplainRefusedRequestAndNoMatch() {
        let policy = Fixtures.policy("svc * @anyvm vault deny")
        let refused = policy.explain(request("svc", "work", "@anyvm"), in: Fixtures.system)
        XCTAssertEqual(refused.first, "request refused before any rule is read: <unknown>:0: invalid intendedtarget token: '@anyvm'")
        let none = policy.explain(request("svc", "work", "ghost"), in: Fixtures.system)
        XCTAssertEqual(none, [
            "/golden/test.policy:1: target ghost (unknown, read as @default) does not match vault",
            "decision: deny notify=yes (no matching rule found)",
        ])
        XCTAssertEqual(policy.explain(request("nothing", "work", "vault"), in: Fixtures.system).first,
                       "no rule names service nothing")
    }
}
