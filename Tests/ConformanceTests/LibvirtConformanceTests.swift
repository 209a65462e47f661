// vmm-libvirt on libvirt's built-in test driver (test:///default): no
// daemon, state lives as long as the plugin's connection. The driver comes
// with a predefined running domain "test", so nothing here assumes an empty
// list.
import Foundation
import Host
import PluginABI
import XCTest

final class LibvirtConformanceTests: XCTestCase {
    static let config = """
    [vmm]
    default = "libvirt"
    [vmm.libvirt]
    uri = "test:///default"
    """

    /// Fixtures live until tearDown: closing one closes its instances.
    var fixtures: [HostFixture] = []

    override func tearDown() {
        fixtures.removeAll()
        super.tearDown()
    }

    func open() throws -> (HostFixture, VmmBackend) {
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: Self.config)
        fixtures.append(fx)
        XCTAssertEqual(fx.backends.registry.refused, [], "plugin refused")
        return (fx, try fx.backends.vmm("libvirt"))
    }

    static func spec(_ name: String) -> DomainSpec { DomainSpec(name: name, memoryMiB: 128, vcpus: 1) }

    func testConformance() throws {
        let (fx, vmm) = try open()
        try VmmConformance(backend: vmm, recorder: fx.recorder, spec: Self.spec).runAll()
    }

    func testCapabilities() throws {
        let (_, vmm) = try open()
        let caps = vmm.factory.capabilities
        XCTAssertEqual(caps, ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT)
        // Deliberately not claimed: the URI may name a driver without a separate kernel.
        XCTAssertEqual(caps & ODY_VMM_CAP_HARDWARE_VIRT, 0)
    }

    func testPredefinedTestDomainIsListedAndRunning() throws {
        let (_, vmm) = try open()
        XCTAssertTrue(try vmm.list().contains("test"))
        let i = try vmm.info("test")
        XCTAssertEqual(i.state, .running)
        XCTAssertEqual(i.uuid.count, 36)
        XCTAssertGreaterThan(i.memoryKiB, 0)
        XCTAssertEqual(i.pid, -1)
    }

    /// Values with XML-special characters in params are escaped, never parsed.
    func testParamsAreEscaped() throws {
        let (_, vmm) = try open()
        let name = "esc-params"
        try vmm.define(DomainSpec(name: name, memoryMiB: 64, vcpus: 1, params: [
            ("cmdline", "console=ttyS0 a<b && c='d' \"e\" </cmdline></os><vcpu>7</vcpu>"),
            ("kernel", "/boot/vm linuz&<x>"),
        ]))
        let i = try vmm.info(name)
        XCTAssertEqual(i.vcpus, 1, "a param value was interpreted as XML")
        try vmm.undefine(name)
    }

    func testBadParamsAreRefusedClearly() throws {
        let (_, vmm) = try open()
        if let e = expectError(.invalid, "control character in a param", {
            try vmm.define(DomainSpec(name: "ctl", params: [("cmdline", "a\u{1}b")]))
        }) { XCTAssertTrue(e.message.contains("cmdline"), "\(e)") }
        if let e = expectError(.invalid, "bad domain_type", {
            try vmm.define(DomainSpec(name: "bad-type", params: [("domain_type", "qemu' foo='bar")]))
        }) { XCTAssertTrue(e.message.contains("domain_type"), "\(e)") }
        expectError(.invalid, "zero memory") { try vmm.define(DomainSpec(name: "nomem", memoryMiB: 0)) }
        expectError(.invalid, "control character in a name") { try vmm.define(DomainSpec(name: "a\nb")) }
        XCTAssertFalse(try vmm.list().contains { ["ctl", "bad-type", "nomem", "a\nb"].contains($0) })
    }

    /// A uuid given at define is kept; a malformed one is libvirt's invalid.
    func testUUID() throws {
        let (_, vmm) = try open()
        let uuid = "11111111-2222-3333-4444-555555555555"
        try vmm.define(DomainSpec(name: "with-uuid", uuid: uuid, memoryMiB: 64, vcpus: 1))
        XCTAssertEqual(try vmm.info("with-uuid").uuid, uuid)
        try vmm.undefine("with-uuid")
        XCTAssertThrowsError(try vmm.define(DomainSpec(name: "bad-uuid", uuid: "not-a-uuid", memoryMiB: 64, vcpus: 1)))
        XCTAssertFalse(try vmm.list().contains("bad-uuid"))
    }

    /// Events of every transition arrive, in order, from libvirt's event thread.
    func testEventSequence() throws {
        let (fx, vmm) = try open()
        let name = "events"
        try vmm.define(Self.spec(name))
        try vmm.start(name)
        try vmm.pause(name)
        try vmm.unpause(name)
        try vmm.shutdown(name, wait: true)
        try vmm.undefine(name)
        XCTAssertNotNil(fx.recorder.lifecycle("vmm.libvirt", name, .na), "no event for undefine")
        let states = fx.recorder.all.filter { $0.domain == name && $0.kind == .lifecycle }.map(\.state)
        // The test driver stops at once: STOPPED without a SHUTDOWN (Halting) first.
        XCTAssertEqual(states, [.halted, .running, .paused, .running, .halted, .na])
    }

    func testShutdownTimeoutConfigIsChecked() throws {
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
        [vmm.libvirt]
        uri = "test:///default"
        shutdown_timeout = "soon"
        """)
        fixtures.append(fx)
        if let e = expectError(.invalid, "bad shutdown_timeout", { _ = try fx.backends.vmm("libvirt") }) {
            XCTAssertTrue(e.message.contains("shutdown_timeout"), "\(e)")
        }
    }

    func testUnreachableURIFailsCleanly() throws {
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
        [vmm.libvirt]
        uri = "qemu+unix:///system?socket=/nonexistent/odyssey-test.sock"
        """)
        fixtures.append(fx)
        do {
            _ = try fx.backends.vmm("libvirt")
            XCTFail("open succeeded against a missing socket")
        } catch {
            XCTAssertTrue(error.message.contains("cannot connect to libvirt"), "\(error)")
            XCTAssertNotNil(error.cause, "no backend code (virErrorNumber)")
        }
    }
}
