// Seeded, bounded random admin payloads for the parsers added for Qubes'
// tools: firewall rules (admin.vm.firewall.Set), CreateInPool's pool
// parameters, notes. Each never traps; what is accepted answers back in a
// form that parses to the same thing; what is refused is a QubesValueError
// or ProtocolError with a bounded message.
import XCTest
@testable import Host

final class AdminPayloadFuzzTests: XCTestCase {
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }

    static let options = ["action=accept", "action=drop", "action=reject", "action=", "proto=tcp", "proto=udp", "proto=icmp",
                          "proto=sctp", "dst4=10.0.0.0/8", "dst4=1.2.3.4", "dst4=1.2.3.4/33", "dst4=1.2.3", "dst4=1.2.3/24",
                          "dst6=fe80::1", "dst6=::/0", "dst6=fe80::1/129", "dsthost=example.com", "dsthost=EXAMPLE.com",
                          "dsthost=", "dstname=1.2.3.4", "dsthost=a/b/c", "dstports=80", "dstports=1-65535", "dstports=0",
                          "dstports=80-70", "dstports=65536", "dstports=-1", "dstports=+80", "icmptype=8", "icmptype=256",
                          "icmptype=0008", "specialtarget=dns", "specialtarget=ntp", "expire=1", "expire=99999999999",
                          "expire=x", "comment=hi there", "comment=", "comment=a=b", "x=y", "=", "action", "dst4=1.2.3.4/032"]
    static let noise: [String] = ["", " ", "  ", "\t", "=", "/", "-", "é", "\u{0}", "\r", "comment=", "action=accept"]

    private func pick<T>(_ items: [T], _ rng: inout SeededGenerator) -> T { items[Int(rng.next() % UInt64(items.count))] }

    func testFirewallRulesNeverTrapAndRoundTrip() {
        var rng = SeededGenerator(state: 14)
        var accepted = 0, refused = 0
        for _ in 0..<20_000 {
            // Mostly a valid action first, so that many lines get past it to the other options.
            var parts = (0..<Int(rng.next() % 4)).map { _ in pick(Self.options, &rng) }
            if rng.next() % 5 != 0 { parts.insert(pick(["action=accept", "action=drop"], &rng), at: 0) }
            if rng.next() % 8 == 0 { parts.insert(pick(Self.noise, &rng), at: Int(rng.next() % UInt64(parts.count + 1))) }
            var line = parts.joined(separator: rng.next() % 20 == 0 ? "  " : " ")
            if rng.next() % 10 == 0, !line.isEmpty {   // a byte flipped somewhere
                var b = Array(line.utf8)
                b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
                line = String(decoding: b, as: UTF8.self)
            }
            switch Result(catching: { () throws(AdminError) in try FirewallRule.parseRules(Array((line + "\n").utf8)) }) {
            case .success(let rules):
                accepted += 1
                XCTAssertEqual(rules.count, 1, line)
                let text = rules.map(\.apiText).joined(separator: "\n") + "\n"
                XCTAssertTrue(text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f || $0 == 10 }, text)
                XCTAssertEqual(try? FirewallRule.parseRules(Array(text.utf8)), rules, "answered form re-parses: \(line)")
            case .failure(let e):
                refused += 1
                XCTAssertTrue(["QubesValueError", "ProtocolError"].contains(e.type), "\(e)")
                XCTAssertLessThan(e.message.utf8.count, 400, e.message)
            }
        }
        XCTAssertGreaterThan(accepted, 1000, "the generator reaches valid rules")
        XCTAssertGreaterThan(refused, 1000, "and invalid ones")
    }

    func testFirewallPayloadBounds() {
        let many = String(repeating: "action=drop\n", count: FirewallRule.maxRules + 1)
        XCTAssertEqual((try? FirewallRule.parseRules(Array(many.utf8)))?.count, nil, "more than maxRules is refused")
        let most = String(repeating: "action=drop\n", count: FirewallRule.maxRules)
        XCTAssertEqual((try? FirewallRule.parseRules(Array(most.utf8)))?.count, FirewallRule.maxRules)
        let long = "action=accept comment=" + String(repeating: "a", count: 60_000)
        XCTAssertEqual((try? FirewallRule.parseRules(Array(long.utf8)))?.first?.comment?.count, 60_000)
    }

    func testCreateInPoolParametersNeverTrap() {
        var rng = SeededGenerator(state: 1414)
        let tokens = ["name=x", "label=red", "pool=default", "pool=lvm", "pool:private=default", "pool:root=default",
                      "pool:swap=default", "pool:=default", "pool:", "pool", "pool=", "template=t", "=", "é", "pool:private=x=y"]
        for _ in 0..<5_000 {
            let payload = (0..<Int(rng.next() % 5)).map { _ in pick(tokens, &rng) }.joined(separator: " ")
            let call = AdminCall(request: AdminRequest(method: "admin.vm.CreateInPool.AppVM", payload: Array(payload.utf8)), stream: nil)
            switch Result(catching: { () throws(AdminError) in try QubesAPI.withoutPools(call) }) {
            case .success(let c):
                let rest = String(decoding: c.payload, as: UTF8.self)
                XCTAssertFalse(rest.contains("pool"), "pool parameters are taken out: \(payload) -> \(rest)")
                XCTAssertTrue(payload.contains("pool=default") || payload.contains("pool:"), payload)
                let poolTokens = payload.split(separator: " ").filter { $0.hasPrefix("pool") }
                XCTAssertEqual(Set(poolTokens.map { $0.split(separator: "=").first! }).count, poolTokens.count, "no duplicates: \(payload)")
            case .failure(let e):
                XCTAssertTrue(["QubesValueError", "ProtocolError", "StoragePoolException"].contains(e.type), "\(e)")
            }
        }
    }

    func testNotesAreMadeSafeToDisplay() {
        var rng = SeededGenerator(state: 41)
        for _ in 0..<5_000 {
            let scalars = (0..<Int(rng.next() % 40)).compactMap { _ in Unicode.Scalar(UInt32(rng.next() % 0x11_0000)) }
            let safe = QubesAPI.displaySafe(String(String.UnicodeScalarView(scalars)))
            for s in safe.unicodeScalars {
                let c = s.properties.generalCategory
                XCTAssertFalse([.format, .privateUse, .surrogate, .unassigned, .lineSeparator, .paragraphSeparator].contains(c), "\(s.value)")
                XCTAssertTrue(c != .control || s == "\t" || s == "\n", "\(s.value)")
            }
        }
    }
}
