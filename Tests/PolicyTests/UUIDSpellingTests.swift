// A UUID names one domain however its hex is cased (issue 11, finding 11): the
// policy resolves `uuid:` in requests, rules and facts in lower case, so an
// upper-case spelling of vault's UUID is vault, never an unknown target that
// falls to @default (which @anyvm matches).
import XCTest
@testable import Policy

final class UUIDSpellingTests: XCTestCase {
    private let vaultUUID = Fixtures.uuid(3)   // "aaaaaaaa-...-000000000003"

    private func decide(_ text: String, _ target: String) -> String {
        Fixtures.summarize(Fixtures.policy(text).evaluate(PolicyRequest(call: "svc", source: "work", target: target),
                                                          in: Fixtures.system))
    }

    func testUpperAndMixedCaseUUIDTargetsAreTheDomain() {
        let text = """
            svc * work vault deny
            svc * work @anyvm allow
            """
        let upper = "uuid:" + vaultUUID.uppercased()
        let mixed = "uuid:" + String(vaultUUID.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
        XCTAssertNotEqual(upper, "uuid:" + vaultUUID)
        for target in ["vault", "uuid:" + vaultUUID, upper, mixed] {
            XCTAssertEqual(decide(text, target), "deny @1", target)
        }
        XCTAssertEqual(Fixtures.system.domain(named: upper)?.name, "vault")
    }

    func testUUIDInARuleMatchesEverySpellingOfTheTarget() {
        let text = "svc * work uuid:\(vaultUUID.uppercased()) deny\nsvc * work @anyvm allow"
        XCTAssertEqual(decide(text, "vault"), "deny @1")
        XCTAssertEqual(decide(text, "uuid:" + vaultUUID), "deny @1")
    }

    func testDom0UUIDInUpperCaseIsDom0() {
        XCTAssertTrue(PolicyToken.isDom0Like("uuid:00000000-0000-0000-0000-000000000000"))
        XCTAssertEqual(PolicyDomain.bareUUID("uuid:ABCDEF00-0000-0000-0000-000000000000"), "abcdef00-0000-0000-0000-000000000000")
    }
}
