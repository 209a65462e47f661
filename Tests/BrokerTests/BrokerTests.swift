// The broker end to end at the AgentLink level (see BrokerHarness.swift).
import Domains
import Foundation
import Policy
import Qrexec
import XCTest
@testable import Host

let basePolicy = """
test.Hello   *  @anyvm  @anyvm    allow
test.Echo    *  @anyvm  @anyvm    allow
test.Exit    *  @anyvm  @anyvm    allow
test.Hold    *  @anyvm  @anyvm    allow
test.Denied  *  @anyvm  @anyvm    deny
test.OnlyVault * vault  @anyvm    allow
test.Default *  @anyvm  @default  allow target=vault
test.NoAuto  *  @anyvm  @anyvm    allow autostart=no
test.Ask     *  @anyvm  @anyvm    ask default_target=vault
test.Disp    *  @anyvm  @dispvm   allow
test.Disp    *  @anyvm  @anyvm    allow target=@dispvm:dtpl
qubes.GetDate * @anyvm  @anyvm    allow target=dom0
test.NoSuchInDom0 * @anyvm @anyvm allow target=dom0

"""

final class BrokerTests: XCTestCase {
    func world(_ policy: String = basePolicy, askTimeout: Int = 30, limits: ResourceLimits = .defaults) throws -> BrokerWorld {
        let w = try BrokerWorld(policy: policy, askTimeout: askTimeout, limits: limits)
        try w.create("work", "vault", "personal")
        try w.create("dtpl", dispTemplate: true)
        return w
    }

    func testAllowedCallRunsTheServiceWithTheSourceFromTheChannel() throws {
        let w = try world()
        let work = try w.start("work")
        let vault = try w.start("vault")
        let r = work.call("vault", "test.Hello+arg")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "vault serves test.Hello+arg for work\n")
        XCTAssertEqual(vault.served, ["user:QUBESRPC test.Hello+arg work " + w.uuidWord("work")])
        // Data both ways, exit codes passed through.
        let big = String(repeating: "0123456789abcdef", count: 64 * 1024)   // 1 MiB
        let e = work.call("vault", "test.Echo", stdin: big)
        XCTAssertEqual(e.status, 0)
        XCTAssertEqual(e.stdout.count, big.count)
        XCTAssertEqual(e.stdout == big, true)
        XCTAssertEqual(work.call("vault", "test.Exit+7").status, 7)
        // Counted by the broker's thread after it connected the call, which
        // the call itself may outrun.
        eventually(5, "3 calls counted as connected") { w.broker.counts.connected == 3 }
    }

    func testDeniedCallIsRefusedWith126() throws {
        let w = try world()
        let work = try w.start("work")
        try w.start("vault")
        XCTAssertEqual(work.call("vault", "test.Denied").status, 126)
        XCTAssertEqual(work.call("vault", "test.NotInPolicy").status, 126, "no rule: deny")
        XCTAssertEqual(work.call("work", "test.Hello").status, 126, "loopback is refused")
        XCTAssertEqual(w.runtime.agent("vault")!.served, [])
    }

    func testTargetByUUIDIsConnectedToThatDomainAndASelfCallByUUIDIsDecidedLikeAnyOther() throws {
        let w = try world()
        let work = try w.start("work")
        let vault = try w.start("vault")
        let r = work.call(w.uuidWord("vault"), "test.Hello")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "vault serves test.Hello for work\n")
        XCTAssertEqual(vault.served, ["user:QUBESRPC test.Hello work " + w.uuidWord("work")])
        // Qubes refuses a loopback by comparing the strings (qubes-core-qrexec 4.4.2): the
        // same domain spelled by uuid is allowed by a matching rule, and served by itself.
        let selfCall = work.call(w.uuidWord("work"), "test.Hello")
        XCTAssertEqual(selfCall.status, 0)
        XCTAssertEqual(selfCall.stdout, "work serves test.Hello for work\n")
        XCTAssertEqual(work.call("work", "test.Hello").status, 126, "by name it is a loopback")
        // A disposable asked for by its template's uuid (test.Hello allows it as asked): the
        // answer keeps the uuid, the broker starts it from dtpl.
        let d = work.call("@dispvm:" + w.uuidWord("dtpl"), "test.Hello")
        XCTAssertEqual(d.status, 0, d.stdout)
        XCTAssertTrue(d.stdout.hasPrefix("disp"), d.stdout)
        eventually(10, "disposable removed") { w.dispNames().isEmpty && w.broker.disposables.alive.isEmpty }
    }

    func testForgedSourceIsIgnored() throws {
        let w = try world()
        let work = try w.start("work")
        let personal = try w.start("personal")
        try w.start("vault")
        // Only vault may call test.OnlyVault: work claiming to be vault gets nothing.
        XCTAssertEqual(work.call("personal", "test.OnlyVault", forgedSource: "vault").status, 126)
        // And an allowed call with a forged source reaches the target as from work.
        let r = work.call("personal", "test.Hello", forgedSource: "vault")
        XCTAssertEqual(r.stdout, "personal serves test.Hello for work\n")
        XCTAssertEqual(personal.served, ["user:QUBESRPC test.Hello work " + w.uuidWord("work")])
    }

    func testNonexistentTargetBehavesLikeDefault() throws {
        let w = try world()
        let work = try w.start("work")
        try w.start("vault")
        let viaDefault = work.call("@default", "test.Default")
        let viaMissing = work.call("no-such-domain", "test.Default")
        XCTAssertEqual(viaDefault.status, 0)
        XCTAssertEqual(viaDefault.stdout, viaMissing.stdout)
        XCTAssertEqual(viaMissing.stdout, "vault serves test.Default for work\n")
        // With no @default rule both are refused alike (the caller learns nothing).
        XCTAssertEqual(work.call("no-such-domain", "test.Hello").status, 126)
        XCTAssertEqual(work.call("@default", "test.Hello").status, 126)
    }

    func testHaltedTargetIsStartedWhenAutostartAllows() throws {
        let w = try world()
        let work = try w.start("work")
        XCTAssertEqual(w.runtime.powerState("vault"), .halted)
        XCTAssertEqual(work.call("vault", "test.Hello").status, 0)
        XCTAssertEqual(w.runtime.powerState("vault"), .running)
    }

    func testAutostartNoRefusesAHaltedTarget() throws {
        let w = try world()
        let work = try w.start("work")
        XCTAssertEqual(work.call("vault", "test.NoAuto").status, 126)
        XCTAssertEqual(w.runtime.powerState("vault"), .halted, "not started")
        try w.start("vault")
        XCTAssertEqual(work.call("vault", "test.NoAuto").status, 0, "running: allowed")
    }

    func testConcurrentCallsToAHaltedDomainStartItOnce() throws {
        let w = try world()
        let work = try w.start("work")
        w.runtime.startDelay["vault"] = 0.3
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in results.add(work.call("vault", "test.Hello").status) }
        XCTAssertEqual(results.all.sorted(), Array(repeating: 0, count: 8))
        XCTAssertEqual(w.runtime.starts.filter { $0 == "vault" }.count, 1)
    }

    func testDom0ServiceRunsOnTheHost() throws {
        let w = try world()
        let work = try w.start("work")
        let r = work.call("personal", "qubes.GetDate")
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.hasPrefix("20") && r.stdout.contains("T"), r.stdout)
        XCTAssertEqual(w.runtime.powerState("personal"), .halted, "redirected to dom0, personal untouched")
        XCTAssertEqual(work.call("vault", "test.NoSuchInDom0").status, 127, "allowed, but dom0 has no such service")
    }

    // MARK: ask

    func testAskAnsweredWithAChoice() throws {
        let w = try world()
        let work = try w.start("work")
        try w.start("vault")
        let result = ResultBox()
        Thread.detachNewThread { result.add(work.call("personal", "test.Ask").status) }
        eventually(5, "ask pending") { !w.broker.pending().isEmpty }
        let ask = w.broker.pending()[0]
        XCTAssertEqual(ask.source, "work")
        XCTAssertEqual(ask.requestedTarget, "personal")
        XCTAssertEqual(ask.defaultTarget, "vault")
        XCTAssertTrue(ask.choices.contains("personal") && ask.choices.contains("vault"), "\(ask.choices)")
        XCTAssertFalse(ask.choices.contains("work"), "the source itself is no choice")
        try w.broker.answer(id: ask.id, allow: "personal")
        eventually(10, "call done") { result.all.count == 1 }
        XCTAssertEqual(result.all, [0])
        XCTAssertEqual(w.runtime.agent("personal")?.served, ["user:QUBESRPC test.Ask work " + w.uuidWord("work")])
        XCTAssertTrue(w.broker.pending().isEmpty)
        XCTAssertThrowsError(try w.broker.answer(id: ask.id, allow: "vault"), "already answered")
    }

    func testAskDefaultDenyAndTimeout() throws {
        let w = try world(askTimeout: 1)
        let work = try w.start("work")
        try w.start("vault")
        w.timeoutBox.value = 30
        let result = ResultBox()
        Thread.detachNewThread { result.add(work.call("personal", "test.Ask").status) }
        eventually(5) { w.broker.pending().count == 1 }
        try w.broker.answer(id: w.broker.pending()[0].id, allow: nil)   // the default target
        eventually(10) { result.all.count == 1 }
        XCTAssertEqual(result.all, [0])
        XCTAssertEqual(w.runtime.agent("vault")?.served, ["user:QUBESRPC test.Ask work " + w.uuidWord("work")])

        Thread.detachNewThread { result.add(work.call("personal", "test.Ask").status) }
        eventually(5) { w.broker.pending().count == 1 }
        try w.broker.deny(id: w.broker.pending()[0].id)
        eventually(10) { result.all.count == 2 }
        XCTAssertEqual(result.all.last, 126)

        w.timeoutBox.value = 1
        let t0 = Date()
        XCTAssertEqual(work.call("personal", "test.Ask").status, 126, "nobody answered: refused")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.9)
        XCTAssertTrue(w.broker.pending().isEmpty)
    }

    func testAskAnswerNotAmongTheChoicesIsRefused() throws {
        let w = try world()
        let work = try w.start("work")
        let result = ResultBox()
        Thread.detachNewThread { result.add(work.call("personal", "test.Ask").status) }
        eventually(5) { w.broker.pending().count == 1 }
        let id = w.broker.pending()[0].id
        XCTAssertThrowsError(try w.broker.answer(id: id, allow: "work")) { e in
            XCTAssertTrue("\(e)".contains("not one of the choices"), "\(e)")
        }
        eventually(10) { result.all.count == 1 }
        XCTAssertEqual(result.all, [126])
        XCTAssertEqual(w.runtime.powerState("vault"), .halted)
        XCTAssertThrowsError(try w.broker.answer(id: "999", allow: "vault"))
    }

    // MARK: disposables

    func testDisposableIsDestroyedAfterTheCall() throws {
        let w = try world()
        let work = try w.start("work")
        let r = work.call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.hasPrefix("disp") && r.stdout.hasSuffix(" serves test.Hello for work\n"), r.stdout)
        let name = String(r.stdout.split(separator: " ")[0])
        eventually(10, "disposable removed") { w.dispNames().isEmpty && !FileManager.default.fileExists(atPath: w.volumes.domainDir(name)) }
        XCTAssertEqual(w.runtime.powerState(name), .halted)
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.volumes.domainDir(name)), "nothing left on disk")
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.volumes.runDir(name)))
        // @dispvm: the caller's default_dispvm.
        try w.store.setProperty("default_dispvm", of: "work", to: "dtpl")
        let d = work.call("@dispvm", "test.Disp")
        XCTAssertEqual(d.status, 0, d.stdout)
        XCTAssertTrue(d.stdout.hasPrefix("disp"), d.stdout)
        eventually(10, "second disposable removed") { w.dispNames().isEmpty && w.broker.disposables.alive.isEmpty }
    }

    func testDisposableIsDestroyedWhenTheCallerIsKilledMidCall() throws {
        let w = try world()
        let work = try w.start("work")
        guard let data = work.open("@dispvm:dtpl", "test.Hold") else { return XCTFail("refused") }
        defer { close(data) }
        eventually(10, "disposable running") { w.dispNames().count == 1 && w.broker.disposables.alive.count == 1 }
        let name = w.dispNames()[0]
        XCTAssertEqual(w.runtime.powerState(name), .running)
        try w.runtime.kill("work")   // the caller vanishes mid-call
        // The store entry goes first, then the volumes: wait for both.
        eventually(10, "disposable destroyed") {
            w.dispNames().isEmpty && !FileManager.default.fileExists(atPath: w.volumes.domainDir(name))
        }
        XCTAssertEqual(w.runtime.powerState(name), .halted)
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.volumes.domainDir(name)))
    }

    func testDisposableStoppedByOtherMeansIsRemoved() throws {
        let w = try world()
        let work = try w.start("work")
        guard let data = work.open("@dispvm:dtpl", "test.Hold") else { return XCTFail("refused") }
        defer { close(data) }
        eventually(10) { w.dispNames().count == 1 }
        try w.runtime.kill(w.dispNames()[0])   // `ody kill dispNNNN`
        eventually(10, "removed") { w.dispNames().isEmpty && w.broker.disposables.alive.isEmpty }
    }

    func testWithDisposableAPI() throws {
        let w = try world()
        XCTAssertThrowsError(try w.broker.disposables.withDisposable { _ in }, "no default_dispvm")
        try w.store.setGlobalProperty("default_dispvm", to: "dtpl")
        let seen: String = try w.broker.disposables.withDisposable { name in
            XCTAssertEqual(w.runtime.powerState(name), .running)
            return name
        }
        eventually(5) { w.runtime.powerState(seen) == .halted && w.dispNames().isEmpty }
        XCTAssertThrowsError(try w.broker.disposables.withDisposable(template: "vault") { _ in }, "not a disposable template")
    }

    func testPreloadPoolIsUsedRefilledAndRefreshed() throws {
        let w = try world()
        try w.store.setFeature("preload-dispvm-max", of: "dtpl", to: "2")
        w.broker.disposables.startPreloading()
        eventually(10, "pool filled") { w.broker.disposables.preloaded("dtpl").count == 2 }
        let pool = w.broker.disposables.preloaded("dtpl")
        for n in pool {
            XCTAssertEqual(w.runtime.powerState(n), .paused)
            XCTAssertEqual(try w.store.features(of: n)["internal"], "1")
        }
        XCTAssertFalse(w.policy.system.domains.filter { !$0.internal }.map(\.name).contains(pool[0]), "preloads are internal")
        let work = try w.start("work")
        let r = work.call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(r.status, 0)
        let used = String(r.stdout.split(separator: " ")[0])
        XCTAssertTrue(pool.contains(used), "a preloaded disposable was used: \(used) not in \(pool)")
        eventually(10, "refilled") {
            let p = w.broker.disposables.preloaded("dtpl")
            return p.count == 2 && !p.contains(used)
        }
        // A template change replaces every preload.
        let before = Set(w.broker.disposables.preloaded("dtpl"))
        try w.store.setProperty("memory", of: "dtpl", to: "512")
        eventually(10, "refreshed") {
            let p = Set(w.broker.disposables.preloaded("dtpl"))
            return p.count == 2 && p.isDisjoint(with: before)
        }
        eventually(10, "old ones gone") { w.dispNames().count == 2 }
        // Fewer wanted: the extra are destroyed.
        try w.store.setFeature("preload-dispvm-max", of: "dtpl", to: "0")
        eventually(10, "emptied") { w.broker.disposables.preloaded("dtpl").isEmpty && w.dispNames().isEmpty }
    }

    // MARK: load

    func testAtMost256PendingCallsPerSource() throws {
        // Asks keep the calls pending here; their own cap (asks_per_source,
        // GovernanceTests) is raised so the cap on pending calls is what shows.
        var limits = ResourceLimits.defaults
        limits.asksPerSource = 4096
        let w = try world(limits: limits)
        let work = try w.start("work")
        let personal = try w.start("personal")
        try w.start("vault")
        for _ in 0..<300 { work.fire("vault", "test.Ask") }   // asks stay pending
        eventually(10, "256 pending, 44 refused") { w.broker.pendingCalls(of: "work") == 256 && w.broker.counts.refused == 44 }
        XCTAssertEqual(w.broker.counts.refused, 44)
        // Another source is not limited by work's calls.
        XCTAssertEqual(personal.call("vault", "test.Hello").status, 0)
        // Asks run a bounded number at a time; deny them as they come.
        eventually(30, "all answered") {
            for a in w.broker.pending() { try? w.broker.deny(id: a.id) }
            return w.broker.pendingCalls(of: "work") == 0
        }
    }

    func testAFloodingDomainDoesNotStarveAnother() throws {
        let w = try world()
        let flood = try w.start("personal")
        let work = try w.start("work")
        try w.start("vault")
        let stop = Flag()
        Thread.detachNewThread {
            var n = 0
            while !stop.value && n < 10_000 { flood.fire("vault", "test.Hello"); n += 1 }
        }
        var statuses: [Int32] = []
        for _ in 0..<30 { statuses.append(work.call("vault", "test.Hello", timeout: 20).status) }
        stop.value = true
        XCTAssertEqual(statuses, Array(repeating: 0, count: 30), "every call of the quiet domain completed")
    }

    func testPolicyReloadWhileCallsAreInFlight() throws {
        let w = try world()
        let work = try w.start("work")
        try w.start("vault")
        let results = ResultBox()
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                for _ in 0..<40 { results.add(work.call("vault", "test.Hello", timeout: 20).status) }
                group.leave()
            }
        }
        for i in 0..<20 {
            try w.writePolicy(i % 2 == 0 ? "test.Hello * @anyvm @anyvm deny\n" : basePolicy)
            usleep(5_000)
        }
        try w.writePolicy("this is not a policy\n")   // fails to load: deny all
        usleep(5_000)
        try w.writePolicy(basePolicy)
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "no call hung")
        XCTAssertEqual(results.all.count, 160)
        XCTAssertTrue(results.all.allSatisfy { $0 == 0 || $0 == 126 }, "\(Set(results.all))")
        XCTAssertEqual(work.call("vault", "test.Hello").status, 0, "the last policy applies")
        try w.writePolicy("test.Hello * @anyvm @anyvm deny\n")
        XCTAssertEqual(work.call("vault", "test.Hello").status, 126)
    }

    func testMalformedTriggerClosesOnlyThatDomainsLink() throws {
        let w = try world()
        let work = try w.start("work")
        let personal = try w.start("personal")
        try w.start("vault")
        // A TRIGGER_SERVICE3 whose ident has a forbidden byte.
        var body = Array(repeating: UInt8(0), count: 96)
        body.replaceSubrange(0..<5, with: Array("vault".utf8))
        body.replaceSubrange(64..<67, with: [0x41, 0x2f, 0x42])   // "A/B"
        body += Array("test.Hello\0".utf8)
        var msg: [UInt8] = []
        withUnsafeBytes(of: UInt32(0x212).littleEndian) { msg += $0 }
        withUnsafeBytes(of: UInt32(body.count).littleEndian) { msg += $0 }
        personal.sendRaw(msg + body)
        eventually(5, "personal's link closed") { w.runtime.powerState("personal") == .halted }
        XCTAssertEqual(work.call("vault", "test.Hello").status, 0, "others unaffected")
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int32] = []
    func add(_ v: Int32) { lock.withLock { values.append(v) } }
    var all: [Int32] { lock.withLock { values } }
}

final class Flag: @unchecked Sendable { var value = false }
