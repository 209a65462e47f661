import XCTest
@testable import Policy

/// Seeded, bounded random inputs: the parser never traps, a deny-only policy never allows, and
/// the index never changes a decision.
final class FuzzTests: XCTestCase {
    /// SplitMix64: small, seedable, same sequence on every run.
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

    // Each column draws mostly from valid values and sometimes from invalid ones, so that many
    // generated policies load and are then evaluated.
    static let services = ["svc", "qubes.Filecopy", "*", "a-b_c.d", "other"]
    static let badServices = ["svc+x", "é", "s/v"]
    static let arguments = ["*", "+", "+a", "+b"]
    static let badArguments = ["a", "+a/b", "+*"]
    static let tokens = ["*", "@anyvm", "@adminvm", "@dispvm:default-dvm", "@dispvm:other-dvm", "@dispvm:ghost",
                         "@dispvm:@tag:dvm", "@tag:work", "@tag:dvm", "@type:AppVM", "@type:AdminVM", "dom0", "work",
                         "personal", "vault", "ghost", "sys-net", "hidden",
                         "uuid:00000000-0000-0000-0000-000000000000", "uuid:\(Fixtures.uuid(1))",
                         "uuid:\(Fixtures.uuid(4))"]
    static let targetOnlyTokens = ["@default", "@dispvm"]
    static let badTokens = ["@dispvm:", "@dispvm:@tag:", "@tag:", "@type:", "@bogus", "@"]
    static let actions = ["allow", "deny", "ask"]
    static let badActions = ["bogus", "allow,target=x"]
    static let parameters = ["target=vault", "target=@dispvm", "target=dom0", "target=@adminvm", "target=ghost",
                             "target=@dispvm:default-dvm", "default_target=vault", "default_target=@dispvm",
                             "user=root", "notify=yes", "notify=no", "autostart=no", "autostart=yes",
                             "target=uuid:\(Fixtures.uuid(3))"]
    static let badParameters = ["target=", "target=@anyvm", "notify=1", "x", "=", "user="]
    static let extraLines = ["", "# comment", "!include-dir /nonexistent-fuzz-dir", "!include /nonexistent-fuzz-file",
                             "!foo", "!compat-4.0", "!include-service svc * /nonexistent"]
    static let requestTargets = ["", "@default", "@adminvm", "dom0", "work", "personal", "vault", "ghost", "@dispvm",
                                 "@dispvm:default-dvm", "@dispvm:other-dvm", "@dispvm:vault", "@anyvm", "*",
                                 "uuid:\(Fixtures.uuid(2))", "uuid:00000000-0000-0000-0000-000000000000", "sys-net"]
    static let requestSources = ["work", "personal", "vault", "dom0", "sys-net", "nodefault", "hidden", "ghost",
                                 "uuid:\(Fixtures.uuid(1))"]

    private func pick<T>(_ items: [T], _ rng: inout SeededGenerator) -> T {
        items[Int(rng.next() % UInt64(items.count))]
    }

    /// Mostly `good`, one time in `oneIn` from `bad`.
    private func pick(_ good: [String], or bad: [String], oneIn: UInt64 = 40, _ rng: inout SeededGenerator) -> String {
        rng.next() % oneIn == 0 ? pick(bad, &rng) : pick(good, &rng)
    }

    private func randomRule(_ rng: inout SeededGenerator, actions: [String]) -> String {
        var fields = [pick(Self.services, or: Self.badServices, &rng),
                      pick(Self.arguments, or: Self.badArguments, &rng),
                      pick(Self.tokens, or: Self.badTokens + Self.targetOnlyTokens, &rng),
                      pick(Self.tokens + Self.targetOnlyTokens, or: Self.badTokens, &rng),
                      pick(actions, or: actions == ["deny"] ? ["deny"] : Self.badActions, &rng)]
        for _ in 0..<Int(rng.next() % 3) { fields.append(pick(Self.parameters, or: Self.badParameters, &rng)) }
        if rng.next() % 100 == 0 { fields.removeLast(Int(rng.next() % UInt64(fields.count))) }
        return fields.joined(separator: rng.next() % 5 == 0 ? "\t" : " ")
    }

    private func randomRequest(_ rng: inout SeededGenerator) -> PolicyRequest {
        let call = pick(["svc", "svc+a", "svc+b", "qubes.Filecopy", "other", "a-b_c.d+a"], &rng)
        return PolicyRequest(call: call, source: pick(Self.requestSources, &rng), target: pick(Self.requestTargets, &rng))
    }

    func testRandomBytesNeverCrashTheParser() {
        var rng = SeededGenerator(state: 0x5EED)
        let alphabet: [UInt8] = Array(" \t\n\r#!@*+=:,$".utf8) + Array("svcallowdenyask@anyvm".utf8) + [0, 0xC2, 0xA0, 0xFF]
        for _ in 0..<2000 {
            let count = Int(rng.next() % 120)
            let bytes = (0..<count).map { _ in
                rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : pick(alphabet, &rng)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if let policy = try? Policy.parse(text, path: "/fuzz/bytes.policy") {
                _ = policy.check(system: Fixtures.system)
            }
        }
    }

    func testTokenSoupNeverCrashesAndIndexAgreesWithScan() {
        var rng = SeededGenerator(state: 42)
        var loaded = 0
        for _ in 0..<800 {
            var lines: [String] = []
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                lines.append(rng.next() % 30 == 0 ? pick(Self.extraLines, &rng)
                                                  : randomRule(&rng, actions: Self.actions))
            }
            guard let policy = try? Policy.parse(lines.joined(separator: "\n"), path: "/fuzz/soup.policy") else {
                continue
            }
            loaded += 1
            _ = policy.check(system: Fixtures.system)
            for _ in 0..<10 {
                let request = randomRequest(&rng)
                let indexed = policy.evaluate(request, in: Fixtures.system)
                XCTAssertEqual(indexed, policy.evaluate(request, in: Fixtures.system, useIndex: false),
                               "\(lines) \(request)")
                _ = policy.explain(request, in: Fixtures.system)
                if indexed.resolution == .ask, let choice = indexed.targetsForAsk.first {
                    XCTAssertNotEqual(indexed.approving(choice, source: request.source).target, request.source)
                }
                if indexed.resolution == .allow {
                    // Qubes refuses a loopback by comparing strings before dom0's spellings become
                    // "dom0": only `uuid:0...` from dom0 can come back as the source's own name.
                    XCTAssert(indexed.target != request.source || indexed.target == "dom0", "loopback allowed")
                    XCTAssertNotNil(indexed.rule)
                }
            }
        }
        XCTAssertGreaterThan(loaded, 80, "the soup should produce some valid policies")
    }

    func testPolicyWithoutAllowOrAskNeverAllows() {
        var rng = SeededGenerator(state: 7)
        for _ in 0..<300 {
            let lines = (0..<(1 + Int(rng.next() % 10))).map { _ in randomRule(&rng, actions: ["deny"]) }
            guard let policy = try? Policy.parse(lines.joined(separator: "\n"), path: "/fuzz/deny.policy") else {
                continue
            }
            for source in Self.requestSources {
                for target in Self.requestTargets {
                    for call in ["svc", "svc+a", "qubes.Filecopy", "x"] {
                        let decision = policy.evaluate(PolicyRequest(call: call, source: source, target: target),
                                                       in: Fixtures.system)
                        XCTAssertEqual(decision.resolution, .deny, "\(lines)")
                    }
                }
            }
        }
    }

    func testDenyAllDeniesEverything() {
        var rng = SeededGenerator(state: 99)
        let failed = Policy.failed(PolicyLoadError(path: "/x", line: 1, message: "broken"))
        for _ in 0..<200 {
            let request = randomRequest(&rng)
            XCTAssertEqual(Policy.denyAll.evaluate(request, in: Fixtures.system).resolution, .deny)
            let decision = failed.evaluate(request, in: Fixtures.system)
            XCTAssertEqual(decision.resolution, .deny)
            XCTAssertTrue(decision.reason.contains("/x:1: broken"))
        }
    }
}
