// vmm-libvirt's description -> domain XML (LibvirtDomainXML), checked
// directly: what a VM domain's XML holds, that hostile names and paths are
// escaped, and that what cannot be carried is refused with a clear word.
// The XML's acceptance by a real libvirtd is LibvirtQemuTests' job.
import LibvirtDomainXML
import PluginKit
import XCTest

final class LibvirtXMLTests: XCTestCase {
    static func vmDescription(run: String = "/run/odyssey/r/work") -> DomainDescription {
        var d = DomainDescription()
        d.volumes = [
            VolumeDescription(role: .private, form: .image, path: "/var/lib/odyssey/domains/work/private.img"),
            VolumeDescription(role: .root, form: .image, snapshot: true, path: "/var/lib/odyssey/templates/debian/root.img"),
            VolumeDescription(role: .volatile, form: .none, path: "", sizeMiB: 512),
            VolumeDescription(role: .modules, form: .image, readOnly: true, path: "/var/lib/odyssey/vm-kernels/6.1/modules.img"),
        ]
        d.shares = [ShareDescription(hostPath: "/usr/lib/odyssey/bin", guestPath: "/.odyssey/bin", tag: "odybin"),
                    ShareDescription(hostPath: "/etc/odyssey/rpc", guestPath: "/etc/odyssey/rpc", tag: "odyrpc", readOnly: false)]
        d.channel = ChannelDescription(kind: .virtioSerial, path: "/run/odyssey/vport/work/vchan.sock", name: "org.odyssey.vchan.0")
        d.kernel = "/var/lib/odyssey/vm-kernels/6.1/vmlinuz"
        d.initrd = "/var/lib/odyssey/vm-kernels/6.1/initrd.img"
        d.kernelopts = "quiet  panic=-1"
        d.label = "red"
        d.agentPath = "/.odyssey/bin/odyssey-agent"
        d.agentEnv = ["ODYSSEY_DEFAULT_USER=user", "LANG=C.UTF-8"]
        d.runDir = run
        return d
    }

    func build(_ d: DomainDescription, name: String = "work", type: String = "qemu") -> Result<(xml: String, plan: StartPlan), DomainXMLError> {
        DomainXML(name: name, uuid: "11111111-2222-3333-4444-555555555555", memoryMiB: 400, maxmemMiB: 800, vcpus: 2,
                  description: d, domainType: type).build()
    }

    func xml(_ d: DomainDescription, name: String = "work", type: String = "qemu") throws -> (xml: String, plan: StartPlan) {
        switch build(d, name: name, type: type) {
        case .success(let r): return r
        case .failure(let e): XCTFail(e.message); throw e
        }
    }

    func refusal(_ d: DomainDescription, name: String = "work") -> String {
        if case .failure(let e) = build(d, name: name) { return e.message }
        XCTFail("built XML for a description that must be refused")
        return ""
    }

    func testVMDomainXML() throws {
        let (x, plan) = try xml(Self.vmDescription())
        for part in [
            "<domain type='qemu'>", "<name>work</name>", "<uuid>11111111-2222-3333-4444-555555555555</uuid>",
            "<memory unit='KiB'>819200</memory>", "<currentMemory unit='KiB'>409600</currentMemory>", "<vcpu>2</vcpu>",
            "<type arch='x86_64' machine='q35'>hvm</type>",
            "<kernel>/var/lib/odyssey/vm-kernels/6.1/vmlinuz</kernel>", "<initrd>/var/lib/odyssey/vm-kernels/6.1/initrd.img</initrd>",
            "<cmdline>odyssey.domain=work odyssey.init=/.odyssey/bin/odyssey-agent odyssey.env=ODYSSEY_DEFAULT_USER=user "
                + "odyssey.env=LANG=C.UTF-8 odyssey.share=odybin:/.odyssey/bin:ro odyssey.share=odyrpc:/etc/odyssey/rpc "
                + "odyssey.vchan=virtio-serial:org.odyssey.vchan.0 console=ttyS0 quiet panic=-1</cmdline>",
            "<features><acpi/></features>", "<on_poweroff>destroy</on_poweroff>", "<on_crash>destroy</on_crash>",
            // root first (vda), as a per-start qcow2 layer in the run dir
            // over the template's root.img, which libvirt must never relabel (shared by every child)
            "<driver name='qemu' type='qcow2'/><source file='/run/odyssey/r/work/root.qcow2'/><backingStore type='file'><format type='raw'/><source file='/var/lib/odyssey/templates/debian/root.img'><seclabel model='dac' relabel='no'/></source><backingStore/></backingStore><target dev='vda' bus='virtio'/><serial>odyssey-root</serial><address type='pci' domain='0x0000' bus='0x00' slot='0x2' function='0x0'/></disk>",
            "<driver name='qemu' type='raw'/><source file='/var/lib/odyssey/domains/work/private.img'/><target dev='vdb' bus='virtio'/><serial>odyssey-private</serial><address type='pci' domain='0x0000' bus='0x00' slot='0x3' function='0x0'/></disk>",
            "<source file='/run/odyssey/r/work/volatile.img'/><target dev='vdc' bus='virtio'/><serial>odyssey-volatile</serial><address type='pci' domain='0x0000' bus='0x00' slot='0x4' function='0x0'/></disk>",
            "<seclabel model='dac' relabel='no'/></source><target dev='vdd' bus='virtio'/><serial>odyssey-modules</serial><readonly/><address type='pci' domain='0x0000' bus='0x00' slot='0x5' function='0x0'/></disk>",
            "<filesystem type='mount' accessmode='squash'><source dir='/usr/lib/odyssey/bin'/><target dir='odybin'/><readonly/><address type='pci' domain='0x0000' bus='0x00' slot='0x6' function='0x0'/></filesystem>",
            "<filesystem type='mount' accessmode='squash'><source dir='/etc/odyssey/rpc'/><target dir='odyrpc'/><address type='pci' domain='0x0000' bus='0x00' slot='0x7' function='0x0'/></filesystem>",
            "<controller type='virtio-serial' index='0'><address type='pci' domain='0x0000' bus='0x00' slot='0x8' function='0x0'/></controller>",
            "<channel type='unix'><source mode='bind' path='/run/odyssey/vport/work/vchan.sock'/><target type='virtio' name='org.odyssey.vchan.0'/></channel>",
            "<serial type='file'><source path='/run/odyssey/r/work/console.log'/>",
            "<label>red</label>",
            "<rng model='virtio'><backend model='random'>/dev/urandom</backend><address type='pci' domain='0x0000' bus='0x00' slot='0x9' function='0x0'/></rng>",
            // every device on q35's root bus (no pcie-root-port per device) and no USB controller
            "<controller type='usb' model='none'/>",
        ] {
            XCTAssertTrue(x.contains(part), "missing \(part) in\n\(x)")
        }
        for absent in ["<interface", "<graphics", "<video", "pcie-root-port", "<seclabel type='static'"] { XCTAssertFalse(x.contains(absent), "\(absent) in a VM domain") }
        XCTAssertEqual(plan.snapshots, [.init(base: "/var/lib/odyssey/templates/debian/root.img", file: "/run/odyssey/r/work/root.qcow2")])
        XCTAssertEqual(plan.scratch, [.init(file: "/run/odyssey/r/work/volatile.img", sizeMiB: 512)])
        XCTAssertEqual(plan.channelDir, "/run/odyssey/vport/work")
        // The plan comes back from the metadata, as libvirt would hand it out.
        let meta = String(x[x.range(of: "<odyssey:domain")!.lowerBound..<x.range(of: "</odyssey:domain>")!.upperBound])
        XCTAssertEqual(StartPlan.read(metadata: meta), plan)
    }

    /// Each VM's QEMU runs as its own uid (QemuUsers.swift): a static DAC
    /// label in the XML, the lowest uid of the range no domain holds.
    func testQemuRunsAsTheDomainsOwnUid() throws {
        var b = DomainXML(name: "work", uuid: "11111111-2222-3333-4444-555555555555", memoryMiB: 400, maxmemMiB: 800, vcpus: 2,
                          description: Self.vmDescription(), domainType: "qemu")
        b.qemuUser = (900_003, 995)
        guard case .success(let (x, _)) = b.build() else { return XCTFail("no XML") }
        XCTAssertTrue(x.contains("<seclabel type='static' model='dac' relabel='yes'><label>+900003:+995</label></seclabel>"), x)
        // The test driver boots nothing: no label.
        b.domainType = "test"
        guard case .success(let (t, _)) = b.build() else { return XCTFail("no XML") }
        XCTAssertFalse(t.contains("<seclabel type='static'"))

        // What libvirt hands back for a running domain labels QEMU and its images; both count once.
        let live = "<domain><seclabel type='static' model='dac' relabel='yes'>\n<label>+900001:+995</label>\n"
            + "<imagelabel>+900001:+995</imagelabel></seclabel><label>+900007:+995</label><label>+12:+995</label><label>+</label></domain>"
        XCTAssertEqual(QemuUsers.labelled(in: live, start: 900_000), [900_001, 900_007])
        XCTAssertEqual(QemuUsers.pick(start: 900_000, taken: [900_000, 900_001, 900_007]), 900_002)
        XCTAssertEqual(QemuUsers.pick(start: 900_000, taken: []), 900_000)
        XCTAssertNil(QemuUsers.pick(start: 900_000, taken: Set((0..<QemuUsers.count).map { 900_000 + $0 })))
    }

    func testVsockChannelAndKVM() throws {
        var d = Self.vmDescription()
        d.channel = ChannelDescription(kind: .vsock, cid: 7)
        let (x, _) = try xml(d, type: "kvm")
        XCTAssertTrue(x.contains("<domain type='kvm'>"))
        XCTAssertTrue(x.contains("<vsock model='virtio'><cid auto='no' address='7'/><address type='pci' domain='0x0000' bus='0x00' slot='0x8' function='0x0'/></vsock>"), x)
        XCTAssertTrue(x.contains("odyssey.vchan=vsock:1024 "), x)
        XCTAssertFalse(x.contains("<channel"))
        d.channel = ChannelDescription(kind: .vsock, name: "512", cid: 7)
        XCTAssertTrue(try xml(d).xml.contains("odyssey.vchan=vsock:512 "))
        d.channel = ChannelDescription(kind: .vsock, cid: 2)
        XCTAssertTrue(refusal(d).contains("cid 2"))
    }

    func testHostileNamesAndPathsAreEscaped() throws {
        var d = Self.vmDescription(run: "/run/o'dy\"s<s>e&y")
        d.volumes[0].path = "/img/a'b\"c<d>e&f</source><vcpu>9</vcpu>"
        d.shares[0].hostPath = "/bin'/><filesystem type='mount'>"
        let name = "x</name><vcpu>9</vcpu><name>y"
        let (x, plan) = try xml(d, name: name)
        XCTAssertTrue(x.contains("<name>x&lt;/name&gt;&lt;vcpu&gt;9&lt;/vcpu&gt;&lt;name&gt;y</name>"), x)
        XCTAssertTrue(x.contains("<source file='/img/a&apos;b&quot;c&lt;d&gt;e&amp;f&lt;/source&gt;&lt;vcpu&gt;9&lt;/vcpu&gt;'/>"), x)
        XCTAssertTrue(x.contains("<source dir='/bin&apos;/&gt;&lt;filesystem type=&apos;mount&apos;&gt;'/>"), x)
        XCTAssertEqual(x.components(separatedBy: "<vcpu>").count, 2, "one <vcpu> element only")
        XCTAssertEqual(x.components(separatedBy: "<filesystem ").count, 3, "two shares, no injected third")
        let meta = String(x[x.range(of: "<odyssey:domain")!.lowerBound..<x.range(of: "</odyssey:domain>")!.upperBound])
        XCTAssertEqual(StartPlan.read(metadata: meta), plan, "escaped metadata reads back byte for byte")
    }

    func testWhatCannotBeCarriedIsRefused() {
        var d = Self.vmDescription()
        d.kernel = ""
        XCTAssertTrue(refusal(d).contains("scripts/guest-kit"), "a missing kernel must name the command that makes one")
        d = Self.vmDescription(); d.agentEnv = ["GREETING=hello world"]
        XCTAssertTrue(refusal(d).contains("agent_env entry \"GREETING=hello world\"") && refusal(d).contains("space"), refusal(d))
        d = Self.vmDescription(); d.kernelopts = "init=/bin/sh\u{1}"
        XCTAssertTrue(refusal(d).contains("control character"), refusal(d))
        d = Self.vmDescription(); d.kernelopts = "quiet odyssey.init=/bin/sh"
        XCTAssertTrue(refusal(d).contains("odyssey.* options"), refusal(d))
        d = Self.vmDescription(); d.agentEnv = ["A=\"x"]
        XCTAssertTrue(refusal(d).contains("double quote"), refusal(d))
        XCTAssertTrue(refusal(Self.vmDescription(), name: "two words").contains("domain name"))
        d = Self.vmDescription(); d.volumes[0] = VolumeDescription(role: .private, form: .tree, path: "/var/lib/odyssey/domains/work/private")
        XCTAssertTrue(refusal(d).contains("directory tree"), refusal(d))
        d = Self.vmDescription(); d.channel = ChannelDescription(kind: .socketDir, path: "/run/odyssey/vchan/work")
        XCTAssertTrue(refusal(d).contains("cannot be wired"), refusal(d))
        d = Self.vmDescription(); d.runDir = ""
        XCTAssertTrue(refusal(d).contains("run_dir"), refusal(d))
        d = Self.vmDescription(); d.volumes[1].path = "/img/a\nb"
        XCTAssertTrue(refusal(d).contains("control character"), refusal(d))
    }

    /// The test driver boots nothing: no kernel needed, no command line, no console.
    func testTestDriverNeedsNoKernel() throws {
        let (x, _) = try xml(DomainDescription(), type: "test")
        XCTAssertTrue(x.contains("<domain type='test'>"))
        XCTAssertFalse(x.contains("<kernel>") || x.contains("<cmdline>") || x.contains("<acpi/>"))
    }

    /// Metadata as libvirt re-serialises it (double quotes, numeric entities),
    /// and a plan whose files leave the run directory is not trusted.
    func testMetadataReading() {
        let libvirtStyle = """
        <odyssey:domain xmlns:odyssey="urn:odyssey:vmm-libvirt:domain:2"><run-dir>/run/a&amp;b</run-dir>\
        <snapshot><base>/t/r&#39;oot.img</base><file>/run/a&amp;b/root.qcow2</file></snapshot>\
        <scratch><file>/run/a&amp;b/volatile.img</file><size-mib>64</size-mib></scratch><channel-dir/></odyssey:domain>
        """
        let p = StartPlan.read(metadata: libvirtStyle)
        XCTAssertEqual(p?.runDir, "/run/a&b")
        XCTAssertEqual(p?.snapshots.first?.base, "/t/r'oot.img")
        XCTAssertEqual(p?.files, ["/run/a&b/root.qcow2", "/run/a&b/volatile.img"])
        XCTAssertNil(StartPlan.read(metadata: "<run-dir>/run/x</run-dir><scratch><file>/etc/passwd</file><size-mib>1</size-mib></scratch>"))
        XCTAssertNil(StartPlan.read(metadata: "<run-dir>/run/x</run-dir><scratch><file>/run/x/../../etc/passwd</file><size-mib>1</size-mib></scratch>"))
        XCTAssertNil(StartPlan.read(metadata: "<run-dir>/run/x</run-dir><snapshot><base>/b</base><file>/run/x/r&bogus;</file></snapshot>"))
    }
}
