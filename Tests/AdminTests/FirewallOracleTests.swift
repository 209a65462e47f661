// Odyssey's firewall rule parser against qubesd's own (issue 14, part 4):
// Tests/Fixtures/qubes-firewall/cases.jsonl holds seeded, edge-heavy rule
// lines and what qubes.firewall.Rule.from_api_string answered for each
// (scripts/qubes-client.d/firewall-oracle.py, run once against a
// qubes-core-admin checkout). Every line must be decided the same way, and
// every accepted rule answered back (admin.vm.firewall.Get) in the same
// text, except where Odyssey is stricter on purpose (numbers with a sign or
// an underscore, an empty host name), which are counted.
import Foundation
import XCTest
@testable import Host

final class FirewallOracleTests: XCTestCase {
    func testEveryLineDecidedAsQubesdDecidesIt() throws {
        let path = Repo.root + "/Tests/Fixtures/qubes-firewall/cases.jsonl"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var agree = 0, stricter = 0, total = 0
        var disagreements: [String] = []
        for line in text.split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let rule = o["line"] as! String
            let qubesd: String?? = o["error"] != nil ? .none : .some(o["qubesd"] as? String)
            total += 1
            let ours: String?? = switch Result(catching: { () throws(FirewallRule.FirewallRuleError) in try FirewallRule.parse(rule) }) {
            case .success(let r): .some(r.expired(now: Int64(Date().timeIntervalSince1970)) ? nil : r.apiText)
            case .failure: .none
            }
            if ours == qubesd { agree += 1; continue }
            if ours == .none, Self.deliberatelyStricter(rule) { stricter += 1; continue }
            disagreements.append("\(rule.debugDescription): qubesd \(String(describing: qubesd)), Odyssey \(String(describing: ours))")
        }
        XCTAssertGreaterThan(total, 10_000)
        XCTAssertEqual(disagreements.count, 0, disagreements.prefix(20).joined(separator: "\n"))
        print("firewall rules: \(agree) of \(total) decided and answered as qubesd; \(stricter) refused on purpose (stricter)")
    }

    /// Odyssey refuses these where qubesd accepts them (FirewallRules.swift says why).
    static func deliberatelyStricter(_ line: String) -> Bool {
        let options = line.split(separator: " ", omittingEmptySubsequences: false)
        return options.contains { o in
            (o.hasPrefix("dstports=") || o.hasPrefix("icmptype=") || o.hasPrefix("expire="))
                && (o.contains("+") || o.contains("_"))
        } || options.contains { $0 == "dsthost=" || $0 == "dstname=" || $0 == "dst4=" || $0 == "dst6=" }
    }
}
