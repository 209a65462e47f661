// vmm-libvirt on libvirt's built-in test driver (test:///default): no
// daemon, state lives as long as the plugin's connection. The driver comes
// with a predefined running domain "test", so nothing here assumes an empty
// list.
import Foundation
import Host
import PluginABI
import PluginKit
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
        XCTAssertEqual(vmm.factory.capabilities, ODY_VMM_CAP_PAUSE | ODY_VMM_CAP_LIFECYCLE_EVENTS | ODY_VMM_CAP_PERSISTENT
            | ODY_VMM_CAP_HARDWARE_VIRT | ODY_VMM_CAP_BLOCK_VOLUMES | ODY_VMM_CAP_CHANNEL_VIRTIO_SERIAL | ODY_VMM_CAP_CHANNEL_VSOCK)
        XCTAssertEqual(vmm.factory.capabilities & ODY_VMM_CAP_CHANNEL_SOCKET_DIR, 0, "a VM cannot take a host socket directory")
    }

    /// libvirt's own "test" domain stands for a VM someone else runs on the
    /// same libvirtd: never listed (so never adopted or killed at a daemon
    /// start), never killed or undefined; still readable.
    func testADomainThatIsNotOursIsLeftAlone() throws {
        let (_, vmm) = try open()
        XCTAssertFalse(try vmm.list().contains("test"), "a domain without our owner in its metadata was listed")
        for (what, op) in [("kill", { try vmm.kill("test") }), ("undefine", { try vmm.undefine("test") })] as [(String, () throws -> Void)] {
            do { try op(); XCTFail("\(what) of a domain that is not ours succeeded") } catch let e as OdysseyError {
                XCTAssertEqual(e.code, .permission, "\(what): \(e)")
                XCTAssertTrue(e.message.contains("not this odysseyd's"), e.message)
            }
        }
        let i = try vmm.info("test")
        XCTAssertEqual(i.state, .running)
        XCTAssertEqual(i.uuid.count, 36)
        XCTAssertGreaterThan(i.memoryKiB, 0)
        XCTAssertEqual(i.pid, -1)
    }

    /// A whole description with hostile paths goes through libvirt's own
    /// parser as data: the domain is defined with exactly one vcpu and the
    /// name it was given (the XML itself is checked in LibvirtXMLTests).
    func testDescriptionWithHostilePathsIsEscaped() throws {
        let (_, vmm) = try open()
        var d = LibvirtXMLTests.vmDescription(run: "/run/o'dy\"s<s>e&y")
        d.volumes[0].path = "/img/a'b\"c<d>e&f</source></disk><vcpu>7</vcpu>"
        d.shares[0].hostPath = "/bin'/><filesystem type='mount'>"
        d.kernel = ""  // the test driver boots nothing
        let name = "esc-desc<vcpu>9<vcpu>&amp;'\"x"
        try DescribedDefine.define(vmm, DomainSpec(name: name, memoryMiB: 64, vcpus: 1), d)
        let i = try vmm.info(name)
        XCTAssertEqual(i.vcpus, 1, "a path or name was interpreted as XML")
        XCTAssertEqual(i.name, name)
        try vmm.undefine(name)
    }

    func testBadDefinesAreRefusedClearly() throws {
        let (_, vmm) = try open()
        if let e = expectError(.invalid, "bad shutdown_timeout param", {
            try vmm.define(DomainSpec(name: "bad-timeout", params: [("shutdown_timeout", "soon")]))
        }) { XCTAssertTrue(e.message.contains("shutdown_timeout"), "\(e)") }
        expectError(.invalid, "zero memory") { try vmm.define(DomainSpec(name: "nomem", memoryMiB: 0)) }
        expectError(.invalid, "control character in a name") { try vmm.define(DomainSpec(name: "a\nb")) }
        var d = DomainDescription()
        d.volumes = [VolumeDescription(role: .private, form: .tree, path: "/var/lib/odyssey/domains/x/private")]
        if let e = expectError(.invalid, "a TREE volume", {
            try DescribedDefine.define(vmm, DomainSpec(name: "tree", memoryMiB: 64, vcpus: 1), d)
        }) { XCTAssertTrue(e.message.contains("directory tree"), "\(e)") }
        XCTAssertFalse(try vmm.list().contains { ["bad-timeout", "nomem", "a\nb", "tree"].contains($0) })
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
        // A definition is no power change (no event); the test driver stops
        // at once: STOPPED without a SHUTDOWN (Halting) first.
        XCTAssertEqual(states, [.running, .paused, .running, .halted, .na])
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

    func testStatePollIntervalConfigIsChecked() throws {
        for bad in ["often", "-1", "7200"] {
            let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
            [vmm.libvirt]
            uri = "test:///default"
            state_poll_interval = "\(bad)"
            """)
            fixtures.append(fx)
            if let e = expectError(.invalid, "state_poll_interval \(bad)", { _ = try fx.backends.vmm("libvirt") }) {
                XCTAssertTrue(e.message.contains("state_poll_interval") && e.message.contains("0 (no state watch)"), "\(e)")
            }
        }
    }

    /// The connection is made at first use (odysseyd starts while libvirtd
    /// is down); that use fails with the command that starts libvirtd.
    func testUnreachableURIFailsCleanly() throws {
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
        [vmm.libvirt]
        uri = "qemu+unix:///system?socket=/nonexistent/odyssey-test.sock"
        """)
        fixtures.append(fx)
        let vmm = try fx.backends.vmm("libvirt")
        do {
            _ = try vmm.list()
            XCTFail("list succeeded against a missing socket")
        } catch {
            XCTAssertTrue(error.message.contains("cannot connect to libvirt"), "\(error)")
            XCTAssertTrue(error.message.contains("scripts/libvirtd-up"), "the error must name the command: \(error)")
            XCTAssertNotNil(error.cause, "no backend code (virErrorNumber)")
        }
    }
}
