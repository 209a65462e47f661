// A domain's whole life through the host: store -> volumes -> native backend
// -> agent -> commands, and what stays or goes at stop.
import Domains
import XCTest
@testable import Host

final class DomainLifecycleTests: XCTestCase {
    func testStartRunStopAndVolumes() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")

        try h.daemon.runtime.start("work")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .running)
        var r = try h.run("work", "echo hello; echo oops >&2; exit 3")
        XCTAssertEqual(r.0, 3)
        XCTAssertEqual(r.1, "hello\n")
        XCTAssertEqual(r.2, "oops\n")
        r = try h.run("work", "hostname; id -u", user: "user")
        XCTAssertEqual(r.1, "work\n1000\n")
        r = try h.run("work", "cat", stdin: "round trip")
        XCTAssertEqual(r.1, "round trip")

        // Root changes are discarded at stop; private changes persist.
        XCTAssertEqual(try h.run("work", "echo r > /etc/root-change; echo p > /rw/private-change").0, 0)
        try h.daemon.runtime.shutdown("work", wait: true)
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .halted)
        try h.daemon.runtime.start("work")
        r = try h.run("work", "cat /etc/root-change 2>/dev/null || echo gone; cat /rw/private-change")
        XCTAssertEqual(r.1, "gone\np\n")

        // Pause freezes the domain; unpause resumes it.
        try h.daemon.runtime.pause("work")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .paused)
        try h.daemon.runtime.unpause("work")
        XCTAssertEqual(try h.run("work", "true").0, 0)

        try h.daemon.runtime.kill("work")
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .halted)
        XCTAssertThrowsError(try h.daemon.runtime.shutdown("work", wait: true)) { e in
            XCTAssertEqual((e as? OdysseyError)?.message, "work is not running")
        }
    }

    func testDomainsDoNotSeeEachOther() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.create("personal", label: "green")
        try h.daemon.runtime.start("work")
        try h.daemon.runtime.start("personal")
        XCTAssertEqual(try h.run("personal", "echo secret > /rw/secret").0, 0)

        // Processes: only the domain's own (agent as PID 1 and the shell).
        let ps = try h.run("work", "ls /proc | grep -c '^[0-9]'")
        XCTAssertLessThan(Int(ps.1.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99, 8, "work sees only its own processes")
        // Files: personal's private volume is nowhere in work.
        XCTAssertNotEqual(try h.run("work", "cat /rw/secret").0, 0)
        // Network: loopback only.
        XCTAssertEqual(try h.run("work", "ls /sys/class/net 2>/dev/null || ip -o link | wc -l").1.trimmingCharacters(in: .whitespacesAndNewlines), "1")
        // Mounting is refused.
        XCTAssertNotEqual(try h.run("work", "mount -t tmpfs x /tmp").0, 0)
        // Channels: work's channel directory holds nothing of personal's.
        XCTAssertEqual(try h.run("work", "ls /run/odyssey/vchan | grep -c personal").1.trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    func testCrashOfDomainIsCleanedUp() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.runtime.start("work")
        // Its init dies without being asked (as under the OOM killer). From
        // inside the domain that is impossible (init ignores signals from its
        // own pid namespace), so kill it from the host.
        let pid = try h.daemon.backends.vmm("native").info("work").pid
        XCTAssertGreaterThan(pid, 1)
        kill(pid, SIGKILL)
        for _ in 0..<200 where h.daemon.runtime.powerState("work") != .halted { usleep(10_000) }
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .halted)
        try h.daemon.runtime.start("work")   // and it starts again cleanly
        XCTAssertEqual(try h.run("work", "echo back").1, "back\n")
    }

    /// A named disposable persists as an object but starts clean every time.
    func testNamedDisposableLosesItsStateAtEveryStop() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("dvm", label: "red")
        try mapped { () throws(DomainError) in try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True") }
        try h.create("named", template: "dvm", label: "red", klass: .dispVM)
        try h.daemon.runtime.start("named")
        XCTAssertEqual(try h.run("named", "echo state > /rw/mark && cat /rw/mark").1, "state\n")
        try h.daemon.runtime.shutdown("named", wait: true)
        try h.daemon.runtime.start("named")
        XCTAssertNotEqual(try h.run("named", "cat /rw/mark").0, 0, "a named disposable's private state is discarded at stop")
        try h.daemon.runtime.shutdown("named", wait: true)
        XCTAssertNoThrow(try h.daemon.store.domain("named"), "the object itself persists")
    }
}
