// Governance with real native domains (needs root): a start whose agent
// cannot run fails when its link closes, not after qrexec_timeout (finding
// 9); the memory limits of running domains stay under host RAM minus
// [limits] memory_reserve_mib, and a refused start names the numbers
// (finding 4); preload pools are clamped by preload_dispvm_max and go
// away at once when the feature is removed (findings 13, 16).
import Domains
import Foundation
import Logging
import XCTest
@testable import Host

final class GovernanceIntegrationTests: XCTestCase {
    /// The domain's init (the agent) exits at once: the start fails with the
    /// link's close, long before qrexec_timeout.
    func testStartFailsAsSoonAsTheAgentCannotStart() throws {
        let h = try Host("odyssey-gov")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("broken")
        try mapped { () throws(DomainError) in try h.daemon.store.setProperty("qrexec_timeout", of: "broken", to: "30") }
        // An "agent" that exits at once (busybox sh exists in the domain).
        let agent = h.pluginDir + "/odyssey-agent"
        try FileManager.default.removeItem(atPath: agent)   // never write through a staged hard link
        try "#!/bin/sh\nexit 3\n".write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)
        XCTAssertThrowsError(try h.daemon.runtime.start("broken")) { e in
            let err = e as? OdysseyError
            XCTAssertNotEqual(err?.code, .timeout, "failed on the link's close, not by waiting qrexec_timeout: \(e)")
            XCTAssertTrue("\(e)".contains("link closed"), "\(e)")
        }
        XCTAssertEqual(h.daemon.runtime.powerState("broken"), .halted)
        XCTAssertEqual(h.daemon.runtime.memoryUsage.committedMiB, 0, "a failed start commits no memory")
    }

    /// Host RAM minus the reserve leaves room for one 200 MiB domain: the
    /// second start is refused with the numbers, and fits once the first stops.
    func testMemoryLimitsOfRunningDomainsStayUnderHostRAMMinusTheReserve() throws {
        let host = ResourceLimits.hostMemoryMiB()
        guard host > 1024 else { throw XCTSkip("host RAM unknown or tiny") }
        let reserve = Int(host) - 300
        let h = try Host("odyssey-gov", extraConfig: "[limits]\nmemory_reserve_mib = \(reserve)\n")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        for n in ["a", "b"] {
            try h.create(n)
            try mapped { () throws(DomainError) in
                try h.daemon.store.setProperty("memory", of: n, to: "100")
                try h.daemon.store.setProperty("maxmem", of: n, to: "200")
            }
        }
        try h.daemon.runtime.start("a")
        XCTAssertEqual(h.daemon.runtime.memoryUsage.committedMiB, 200)
        XCTAssertEqual(h.daemon.runtime.memoryUsage.capacityMiB, 300)
        XCTAssertThrowsError(try h.daemon.runtime.start("b")) { e in
            let err = e as? OdysseyError
            XCTAssertEqual(err?.code, .limit)
            XCTAssertEqual(err?.adminError.type, "QubesMemoryError", "ody start shows Qubes' own error type")
            XCTAssertTrue("\(e)".contains("needs 200 MiB") && "\(e)".contains("hold 200 MiB of 300 MiB")
                          && "\(e)".contains("memory_reserve_mib \(reserve)"), "\(e)")
        }
        XCTAssertEqual(h.daemon.runtime.powerState("b"), .halted)
        XCTAssertEqual(h.daemon.runtime.memoryUsage.committedMiB, 200, "the refused start committed nothing")
        try h.daemon.runtime.kill("a")
        XCTAssertEqual(h.daemon.runtime.memoryUsage.committedMiB, 0, "a stop gives its memory back")
        try h.daemon.runtime.start("b")
        XCTAssertEqual(try h.run("b", "echo up").1, "up\n")
    }

    /// A preload pool emptied at once (the feature removed): the paused
    /// disposables are destroyed, none left behind or stuck.
    func testRemovingThePreloadFeatureDestroysThePool() throws {
        let h = try Host("odyssey-gov", extraConfig: "[limits]\npreload_dispvm_max = 4\n")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("dvm", label: "red")
        try mapped { () throws(DomainError) in
            try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
            try h.daemon.store.setProperty("maxmem", of: "dvm", to: "128")
            try h.daemon.store.setFeature(Disposables.preloadFeature, of: "dvm", to: "8")   // the most a value may say
        }
        let d = h.daemon.broker.disposables
        d.startPreloading()
        let t0 = Date()
        while Date().timeIntervalSince(t0) < 60 && d.preloaded("dvm").count < 4 { usleep(50_000) }
        XCTAssertEqual(d.preloaded("dvm").count, 4, "8 asked, preload_dispvm_max = 4")
        XCTAssertEqual(d.alive.count, 4)
        let pool = d.preloaded("dvm")
        XCTAssertEqual(h.daemon.runtime.powerState(pool[0]), .paused)
        try mapped { () throws(DomainError) in try h.daemon.store.removeFeature(Disposables.preloadFeature, of: "dvm") }
        let t1 = Date()
        // `alive` empties when a destroy begins; the store entry goes last.
        func gone() -> Bool { d.alive.isEmpty && pool.allSatisfy { !h.daemon.store.snapshot().contains($0) } }
        while Date().timeIntervalSince(t1) < 60 && !gone() { usleep(50_000) }
        XCTAssertTrue(d.alive.isEmpty, "\(d.alive)")
        for n in pool { XCTAssertFalse(h.daemon.store.snapshot().contains(n), "\(n) removed") }
    }

    /// A disposable that does not fit in memory: the caller's ody-call
    /// exits 125 and prints why; nothing is left behind.
    func testDisposableThatDoesNotFitInMemoryExits125WithTheReason() throws {
        let host = ResourceLimits.hostMemoryMiB()
        guard host > 1024 else { throw XCTSkip("host RAM unknown or tiny") }
        let h = try Host("odyssey-gov", topConfig: "domain_rpc_dir = \"\(Build.root)/config/domain-rpc\"", extraConfig: """
            [limits]
            memory_reserve_mib = \(Int(host) - 300)
            """)
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.create("dvm", label: "red")
        try mapped { () throws(DomainError) in
            try h.daemon.store.setProperty("maxmem", of: "work", to: "64")
            try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
            try h.daemon.store.setProperty("maxmem", of: "dvm", to: "200")
            try h.daemon.store.setGlobalProperty("default_dispvm", to: "dvm")
        }
        try h.daemon.runtime.start("work")
        // One disposable held open (64 + 200 of 300 MiB)...
        _ = try h.run("work", "echo 'sleep 30' | /.odyssey/bin/ody-call @dispvm qubes.VMShell >/dev/null 2>&1 &", user: "user")
        let t0 = Date()
        while Date().timeIntervalSince(t0) < 20 && h.daemon.broker.disposables.alive.count < 1 { usleep(50_000) }
        XCTAssertEqual(h.daemon.broker.disposables.alive.count, 1)
        // ...so the next one does not fit.
        let r = try h.run("work", "echo 'echo hi' | /.odyssey/bin/ody-call @dispvm qubes.VMShell", user: "user")
        XCTAssertEqual(r.0, 125, r.2)
        XCTAssertEqual(r.1, "")
        XCTAssertTrue(r.2.contains("not enough memory to start disp") && r.2.contains("needs 200 MiB"), r.2)
        XCTAssertEqual(h.daemon.broker.disposables.alive.count, 1, "the refused one is gone")
    }
}
