// Resource governance in the broker (issue 11): asks hold no worker and are
// capped per source (finding 15); disposables are capped per calling domain
// and in total, preloads included, and a refused call says why with exit 125
// (finding 4); nothing polls while disposables are held (finding 13).
// Real AgentLinks, store, policy and scheduler (BrokerHarness.swift).
import Domains
import Foundation
import Policy
import Qrexec
import XCTest
@testable import Host

final class GovernanceTests: XCTestCase {
    func world(_ limits: ResourceLimits = .defaults, maxWorkers: Int = 96, perSource: Int = 24) throws -> BrokerWorld {
        let w = try BrokerWorld(policy: basePolicy, maxWorkers: maxWorkers, perSource: perSource, limits: limits)
        try w.create("work", "vault", "personal")
        try w.create("dtpl", dispTemplate: true)
        return w
    }

    // MARK: asks (finding 15)

    /// Asks from many domains (as from one domain's disposables) once held
    /// every worker: an unrelated call waited for them. Parked asks hold none.
    func testPendingAsksHoldNoWorkerAndAreAllListed() throws {
        let w = try world(maxWorkers: 4, perSource: 2)
        let sources = (1...8).map { "s\($0)" }
        for s in sources { try w.create(s) }
        let agents = try sources.map { try w.start($0) }
        let personal = try w.start("personal")
        try w.start("vault")
        for a in agents { for _ in 0..<5 { a.fire("vault", "test.Ask") } }
        eventually(10, "all 40 asks pending and listed") { w.broker.pending().count == 40 }
        // An unrelated call is answered while every ask is still pending.
        let r = personal.call("vault", "test.Hello", timeout: 20)
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "vault serves test.Hello for personal\n")
        XCTAssertEqual(w.broker.pending().count, 40, "the asks were still pending when the call completed")
        XCTAssertEqual(Set(w.broker.pending().map(\.source)), Set(sources))
        for a in w.broker.pending() { try w.broker.deny(id: a.id) }
        eventually(10, "denied asks end their calls") { sources.allSatisfy { w.broker.pendingCalls(of: $0) == 0 } }
    }

    /// An answered parked ask resumes its call on a worker and connects it.
    func testParkedAskResumesWhenAnswered() throws {
        let w = try world(maxWorkers: 2, perSource: 1)
        let work = try w.start("work")
        try w.start("vault")
        let results = ResultBox()
        for _ in 0..<3 { Thread.detachNewThread { results.add(work.call("vault", "test.Ask", timeout: 20).status) } }
        eventually(10, "3 asks pending") { w.broker.pending().count == 3 }
        for a in w.broker.pending() { try w.broker.answer(id: a.id, allow: "vault") }
        eventually(10, "3 calls done") { results.all.count == 3 }
        XCTAssertEqual(results.all, [0, 0, 0])
        XCTAssertEqual(w.runtime.agent("vault")?.served.count, 3)
    }

    func testAsksBeyondThePerSourceCapAreRefusedWithAMessage() throws {
        var limits = ResourceLimits.defaults
        limits.asksPerSource = 3
        let w = try world(limits)
        let work = try w.start("work")
        let personal = try w.start("personal")
        try w.start("vault")
        let results = ResultBox()
        for _ in 0..<3 { Thread.detachNewThread { results.add(work.call("vault", "test.Ask", timeout: 20).status) } }
        eventually(10, "3 asks pending") { w.broker.pending().count == 3 }
        let over = work.call("vault", "test.Ask")
        XCTAssertEqual(over.status, 126, "refused")
        XCTAssertTrue(over.stderr.contains("asks_per_source"), over.stderr)
        XCTAssertEqual(w.broker.pending().count, 3)
        // The cap is per source: another domain may still ask.
        Thread.detachNewThread { results.add(personal.call("vault", "test.Ask", timeout: 20).status) }
        eventually(10, "personal's ask pending") { w.broker.pending().count == 4 }
        for a in w.broker.pending() { try w.broker.deny(id: a.id) }
        eventually(10) { results.all.count == 4 }
        XCTAssertEqual(results.all, [126, 126, 126, 126])
    }

    // MARK: disposables (finding 4)

    func testDisposablesAreCappedPerCallerAndInTotalWithExit125() throws {
        var limits = ResourceLimits.defaults
        limits.dispvmsPerDomain = 2
        limits.dispvmsTotal = 3
        let w = try world(limits)
        let work = try w.start("work")
        let personal = try w.start("personal")
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<2 { held.append(try XCTUnwrap(work.open("@dispvm:dtpl", "test.Hold"), "work's disposable")) }
        let overCaller = work.call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(overCaller.status, 125)
        XCTAssertTrue(overCaller.stderr.contains("dispvms_per_domain = 2"), overCaller.stderr)
        XCTAssertEqual(w.broker.disposables.held(by: "work"), 2)
        // The cap is per caller: personal gets one, then the total is reached.
        held.append(try XCTUnwrap(personal.open("@dispvm:dtpl", "test.Hold"), "personal's disposable"))
        let overTotal = personal.call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(overTotal.status, 125)
        XCTAssertTrue(overTotal.stderr.contains("dispvms_total = 3"), overTotal.stderr)
        XCTAssertEqual(w.broker.disposables.alive.count, 3)
        XCTAssertEqual(w.dispNames().count, 3, "refused calls made no disposable")
        // Calls that end give their disposables back.
        held.forEach { close($0) }
        held = []
        eventually(10, "held disposables destroyed") { w.broker.disposables.alive.isEmpty && w.dispNames().isEmpty }
        XCTAssertEqual(w.broker.disposables.held(by: "work"), 0)
        XCTAssertEqual(work.call("@dispvm:dtpl", "test.Hello").status, 0)
    }

    /// A disposable calling @dispvm spends its creator's budget: a chain of
    /// disposables cannot multiply dispvms_per_domain.
    func testDisposablesOfADisposableCountAgainstItsCreator() throws {
        var limits = ResourceLimits.defaults
        limits.dispvmsPerDomain = 2
        let w = try world(limits)
        let work = try w.start("work")
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        held.append(try XCTUnwrap(work.open("@dispvm:dtpl", "test.Hold")))
        let first = try XCTUnwrap(w.dispNames().first)
        let firstAgent = try XCTUnwrap(w.runtime.agent(first))
        held.append(try XCTUnwrap(firstAgent.open("@dispvm:dtpl", "test.Hold"), "the first disposable's own"))
        XCTAssertEqual(w.broker.disposables.held(by: "work"), 2)
        XCTAssertEqual(w.broker.disposables.held(by: first), 0)
        let second = try XCTUnwrap(w.dispNames().first { $0 != first })
        let over = try XCTUnwrap(w.runtime.agent(second)).call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(over.status, 125)
        XCTAssertTrue(over.stderr.contains("work already holds 2 disposables"), over.stderr)
        XCTAssertEqual(w.dispNames().count, 2)
    }

    /// preload-dispvm-max is clamped by [limits] preload_dispvm_max, and the
    /// pool counts toward dispvms_total.
    func testPreloadIsCappedAndCountsTowardTheTotal() throws {
        var limits = ResourceLimits.defaults
        limits.preloadDispvmMax = 2
        limits.dispvmsTotal = 3
        let w = try world(limits)
        let work = try w.start("work")
        try mapped { () throws(DomainError) in try w.store.setFeature(Disposables.preloadFeature, of: "dtpl", to: "8") }   // the most a value may say
        w.broker.disposables.startPreloading()
        eventually(10, "pool of 2") { w.broker.disposables.preloaded("dtpl").count == 2 }
        XCTAssertEqual(w.broker.disposables.preloadMax("dtpl"), 2, "8 asked, 2 allowed")
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        // The first call takes a preloaded one and the pool refills (3 alive);
        // then the pool can only shrink: a refill would be a 4th.
        for (i, poolAfter) in [2, 1, 0].enumerated() {
            held.append(try XCTUnwrap(work.open("@dispvm:dtpl", "test.Hold"), "held call \(i)"))
            eventually(10, "call \(i) holds a disposable") { w.broker.disposables.held(by: "work") == i + 1 }
            eventually(10, "pool of \(poolAfter)") { w.broker.disposables.preloaded("dtpl").count == poolAfter }
            XCTAssertLessThanOrEqual(w.broker.disposables.usage.alive, 3)
        }
        let over = work.call("@dispvm:dtpl", "test.Hello")
        XCTAssertEqual(over.status, 125)
        XCTAssertTrue(over.stderr.contains("dispvms_total = 3"), over.stderr)
        XCTAssertLessThanOrEqual(w.dispNames().count, 3)
    }

    // MARK: no polling (finding 13)

    /// Held disposable calls are watched by sleeping on their links, not by
    /// polling every few ms: count the voluntary context switches of the
    /// whole process (every usleep is one) while nothing happens.
    func testHeldDisposablesDoNotPoll() throws {
        var limits = ResourceLimits.defaults
        limits.dispvmsPerDomain = 16
        let w = try world(limits)
        let work = try w.start("work")
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<16 { held.append(try XCTUnwrap(work.open("@dispvm:dtpl", "test.Hold"))) }
        XCTAssertEqual(w.broker.disposables.alive.count, 16)
        let before = Self.voluntarySwitches()
        sleep(2)
        let switches = Self.voluntarySwitches() - before
        // Polling every 5 ms: 16 x 200 x 2 = 6,400; sleeping: a few per second each.
        XCTAssertLessThan(switches, 800, "\(switches) wakeups in 2 s while 16 disposables were held")
        held.forEach { close($0) }
        held = []
        eventually(10, "destroyed once the calls ended") { w.broker.disposables.alive.isEmpty && w.dispNames().isEmpty }
    }

    static func voluntarySwitches() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_nvcsw
    }
}
