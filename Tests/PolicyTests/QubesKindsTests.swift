// One small case per kind of disagreement the differential run against Qubes found (issue 14),
// so that each is readable on its own; the corpus in QubesOracleTests covers them at scale.
// Every expected answer here is what qubes-core-qrexec 4.4.2 answered for the same policy,
// facts and request (deny lines without the rule, as Qubes' own messages carry it).
import XCTest
@testable import Policy

final class QubesKindsTests: XCTestCase {
    static func uuid(_ last: Int) -> String { "bbbbbbbb-0000-0000-0000-00000000000\(last)" }

    static let system = PolicySystem(domains: [
        PolicyDomain(name: "dom0", type: "AdminVM", powerState: "Running", uuid: "00000000-0000-0000-0000-000000000000"),
        PolicyDomain(name: "work", defaultDispvm: "dvm", powerState: "Running", uuid: uuid(1)),
        PolicyDomain(name: "vault", uuid: uuid(2)),
        PolicyDomain(name: "dvm", tags: ["dvm"], templateForDispvms: true, powerState: "Running", uuid: uuid(3)),
        PolicyDomain(name: "secret-dvm", tags: ["dvm"], templateForDispvms: true, uuid: uuid(4), internal: true),
        PolicyDomain(name: "lonely", powerState: "Running", uuid: uuid(5)),
        PolicyDomain(name: "broken", defaultDispvm: "ghost", powerState: "Running", uuid: uuid(6)),
        PolicyDomain(name: "hushed", defaultDispvm: "secret-dvm", powerState: "Running", uuid: uuid(7)),
    ])

    /// `allow T @LINE`, `ask [A,B] @LINE` as Fixtures.summarize; a deny is `deny` or `deny quiet`.
    private func decide(_ policy: String, _ source: String, _ target: String) -> String {
        let decision = Fixtures.policy(policy.replacingOccurrences(of: " | ", with: "\n"))
            .evaluate(PolicyRequest(call: "svc", source: source, target: target), in: Self.system)
        guard decision.resolution == .deny else { return Fixtures.summarize(decision) }
        return decision.notify ? "deny" : "deny quiet"
    }

    func testInternalDisposableTemplatesAreNeverOffered() {
        XCTAssertEqual(decide("svc * @anyvm @anyvm ask", "work", "vault"),
                       "ask [@dispvm:dvm,broken,dvm,hushed,lonely,vault] @1")
        XCTAssertEqual(decide("svc * @anyvm @anyvm ask", "hushed", "@dispvm"),
                       "ask [@dispvm:dvm,broken,dvm,lonely,vault,work] @1", "not even as the caller's default_dispvm")
    }

    func testTargetsAreAnsweredInTheFormGiven() {
        XCTAssertEqual(decide("svc * @anyvm @anyvm allow", "work", "uuid:" + Self.uuid(2)), "allow uuid:\(Self.uuid(2)) @1")
        XCTAssertEqual(decide("svc * @anyvm @anyvm allow", "work", "@dispvm:uuid:" + Self.uuid(3)),
                       "allow @dispvm:uuid:\(Self.uuid(3)) @1")
        XCTAssertEqual(decide("svc * @anyvm @anyvm ask target=uuid:00000000-0000-0000-0000-000000000000", "work", "vault"),
                       "ask [dom0] @1", "dom0's spellings are offered as dom0")
    }

    func testSelfCallsAreDecidedLikeAnyOtherUnlessSpelledAsTheSource() {
        XCTAssertEqual(decide("svc * @anyvm @anyvm allow", "work", "uuid:" + Self.uuid(1)), "allow uuid:\(Self.uuid(1)) @1")
        XCTAssertEqual(decide("svc * @anyvm @anyvm allow", "work", "work"), "deny", "the same string is a loopback")
        XCTAssertEqual(decide("svc * * * allow", "dom0", "uuid:00000000-0000-0000-0000-000000000000"), "allow dom0 @1")
        XCTAssertEqual(decide("svc * * * allow", "dom0", "dom0"), "deny")
    }

    func testAskWithNothingToChooseIsADeny() {
        XCTAssertEqual(decide("svc * @anyvm vault ask autostart=no | svc * @anyvm lonely deny", "work", "vault"), "deny")
    }

    func testFirstMatchingLineForDisposables() {
        // @dispvm:uuid:U is compared with "@dispvm:" + default_dispvm as a string: never equal.
        XCTAssertEqual(decide("svc * @anyvm @dispvm:uuid:\(Self.uuid(3)) deny | svc * @anyvm @dispvm allow", "work", "@dispvm"),
                       "allow @dispvm:dvm @2")
        XCTAssertEqual(decide("svc * @anyvm @dispvm:dvm deny | svc * @anyvm @dispvm allow", "work", "@dispvm"), "deny")
        // Without a default_dispvm, @dispvm:@tag:T finds no template and does not match; @dispvm:X fails.
        XCTAssertEqual(decide("svc * @anyvm @dispvm:@tag:dvm deny | svc * @anyvm @anyvm allow target=vault", "lonely", "@dispvm"),
                       "allow vault @2")
        XCTAssertEqual(decide("svc * @anyvm @dispvm:dvm deny | svc * @anyvm @anyvm allow target=vault", "lonely", "@dispvm"),
                       "deny")
    }

    func testAdminVMKeywordAndDom0AreSeparateWhileCollecting() {
        XCTAssertEqual(decide("svc * @anyvm dom0 deny | svc * @anyvm @adminvm allow | svc * @anyvm vault ask", "work", "vault"),
                       "ask [dom0,vault] @3")
        XCTAssertEqual(decide("svc * @anyvm @adminvm deny | svc * @anyvm dom0 allow | svc * @anyvm vault ask", "work", "vault"),
                       "ask [dom0,vault] @3")
    }

    func testDefaultDispVMNamingNoDomainRefusesAnAskThatWouldOfferIt() {
        XCTAssertEqual(decide("svc * @anyvm @anyvm ask", "broken", "vault"), "deny")
    }

    func testNotifyOnDenyFollowsTheRule() {
        XCTAssertEqual(decide("svc * @anyvm vault deny notify=no", "work", "vault"), "deny quiet")
        XCTAssertEqual(decide("svc * @anyvm vault allow autostart=no notify=no", "work", "vault"), "deny quiet")
    }
}
