import XCTest
@testable import Domains

final class PropertyTests: XCTestCase {
    func get(_ s: DomainStore, _ p: String, _ d: String) throws -> String { try s.property(p, of: d).qubesGetLine }

    func testDefaultsAndTypes() throws {
        let (s, _) = try populatedStore(self)
        XCTAssertEqual(try get(s, "memory", "work"), "default=True type=int 400")
        XCTAssertEqual(try get(s, "maxmem", "work"), "default=True type=int 4000")
        XCTAssertEqual(try get(s, "vcpus", "work"), "default=True type=int 2")
        XCTAssertEqual(try get(s, "default_user", "work"), "default=True type=str user")
        XCTAssertEqual(try get(s, "qrexec_timeout", "work"), "default=True type=int 60")
        XCTAssertEqual(try get(s, "shutdown_timeout", "work"), "default=True type=int 60")
        XCTAssertEqual(try get(s, "autostart", "work"), "default=True type=bool False")
        XCTAssertEqual(try get(s, "include_in_backups", "work"), "default=True type=bool True")
        XCTAssertEqual(try get(s, "template_for_dispvms", "work"), "default=True type=bool False")
        XCTAssertEqual(try get(s, "provides_network", "work"), "default=True type=bool False")
        XCTAssertEqual(try get(s, "label", "work"), "default=False type=label blue")
        XCTAssertEqual(try get(s, "template", "work"), "default=False type=vm fedora")
        XCTAssertEqual(try get(s, "netvm", "work"), "default=True type=vm ")
        XCTAssertEqual(try get(s, "guivm", "work"), "default=True type=vm dom0")
        XCTAssertEqual(try get(s, "audiovm", "work"), "default=True type=vm dom0")
        XCTAssertEqual(try get(s, "default_dispvm", "work"), "default=True type=vm ")
        XCTAssertEqual(try get(s, "kernel", "work"), "default=True type=str ")
        XCTAssertEqual(try get(s, "virt_mode", "work"), "default=True type=str pvh")
        XCTAssertEqual(try get(s, "vmm", "work"), "default=True type=str native")
        XCTAssertEqual(try get(s, "klass", "work"), "default=True type=str AppVM")
        XCTAssertEqual(try get(s, "name", "work"), "default=False type=str work")   // qubesd: set at creation
        XCTAssertEqual(try get(s, "updateable", "work"), "default=True type=bool False")
        XCTAssertEqual(try get(s, "updateable", "fedora"), "default=True type=bool True")
        XCTAssertEqual(try get(s, "icon", "work"), "default=True type=str appvm-blue")
        XCTAssertEqual(try get(s, "icon", "dom0"), "default=True type=str adminvm-black")
        XCTAssertFalse(try s.snapshot().globalPropertyHelp("default_vmm").isEmpty)
        XCTAssertEqual(try s.property("uuid", of: "work").value, try s.domain("work").uuid.text)
        XCTAssertEqual(try get(s, "qid", "dom0"), "default=False type=int 0")
        XCTAssertEqual(try get(s, "label", "dom0"), "default=False type=label black")
        // Class-specific property sets.
        assertDomainError("QubesNoSuchPropertyError", "'template' of fedora") { try s.property("template", of: "fedora") }
        assertDomainError("QubesNoSuchPropertyError", "'memory' of dom0") { try s.property("memory", of: "dom0") }
        assertDomainError("QubesNoSuchPropertyError", "'bogus' of work") { try s.property("bogus", of: "work") }
        assertDomainError("QubesVMNotFoundError") { try s.property("memory", of: "nope") }
        XCTAssertTrue(try s.snapshot().propertyNames(of: "work").contains("template"))
        XCTAssertFalse(try s.snapshot().propertyNames(of: "fedora").contains("template"))
        XCTAssertEqual(try s.snapshot().allProperties(of: "work").count, try s.snapshot().propertyNames(of: "work").count)
    }

    /// Every property of every class: Get works and reports the table's type;
    /// every writable one round-trips a valid value and resets to a default.
    func testEveryPropertyRoundTrips() throws {
        let (s, _) = try populatedStore(self)
        try s.create("sys-net", class: .appVM, label: "red", template: "fedora", properties: ["provides_network": "True"])
        try s.create("dvm", class: .appVM, label: "red", template: "fedora", properties: ["template_for_dispvms": "True"])
        try s.create("solo", class: .standaloneVM, label: "green")
        try s.create("named-disp", class: .dispVM, label: "red", template: "dvm")
        let samples: [String: String] = [
            "audiovm": "sys-net", "guivm": "sys-net", "netvm": "sys-net", "default_dispvm": "dvm", "template": "fedora",
            "label": "purple", "default_user": "bob", "kernel": "6.1", "kernelopts": "quiet", "virt_mode": "hvm",
            "vmm": "libvirt", "memory": "512", "maxmem": "2048", "vcpus": "4", "qrexec_timeout": "10", "shutdown_timeout": "20",
        ]
        for dom in ["dom0", "fedora", "work", "solo", "named-disp"] {
            let klass = try s.domain(dom).klass
            for name in PropertyTable.names(for: klass) {
                let def = PropertyTable.definition(name, for: klass)!
                let v = try s.property(name, of: dom)
                XCTAssertEqual(v.type, def.type, "\(dom).\(name)")
                guard !def.readOnly else {
                    assertDomainError("QubesPropertyAccessError") { try s.setProperty(name, of: dom, to: v.value) }
                    continue
                }
                var sample = samples[name] ?? (def.type == .bool ? (v.value == "True" ? "False" : "True") : v.value)
                if name == "template", klass == .dispVM { sample = "dvm" }
                if dom == "fedora" && name == "provides_network" { sample = "True" }
                try s.setProperty(name, of: dom, to: sample)
                let after = try s.property(name, of: dom)
                XCTAssertFalse(after.isDefault, "\(dom).\(name)")
                XCTAssertEqual(after.value, def.type == .bool ? (PropertyTable.parseBool(sample)! ? "True" : "False") : sample, "\(dom).\(name)")
                if def.hasDefault || (name == "label" && klass == .dispVM) {
                    try s.resetProperty(name, of: dom)
                    XCTAssertTrue(try s.property(name, of: dom).isDefault, "\(dom).\(name)")
                }
            }
        }
    }

    /// Issue 11, finding 16: values a delegate set that no host can honour,
    /// and a kernel that is a host path.
    func testValuesBoundedByTypeAndKernelIsAName() throws {
        let (s, _) = try populatedStore(self)
        for (p, v) in [("maxmem", "1073741824"), ("memory", "1048577"), ("vcpus", "100000"), ("qrexec_timeout", "99999999"),
                       ("shutdown_timeout", "3601")] {
            assertDomainError("QubesPropertyValueError", "at most") { try s.setProperty(p, of: "work", to: v) }
        }
        for v in ["/etc/shadow", "../../etc/shadow", "a/b", ".hidden", String(repeating: "k", count: 65), "6.1 quiet"] {
            assertDomainError("QubesPropertyValueError", "kernel name") { try s.setProperty("kernel", of: "work", to: v) }
            assertDomainError("QubesPropertyValueError", "kernel name") { try s.setGlobalProperty("default_kernel", to: v) }
        }
        assertDomainError("QubesPropertyValueError", "printable ASCII") { try s.setProperty("kernelopts", of: "work", to: String(repeating: "q", count: 1025)) }
        assertDomainError("QubesPropertyValueError", "printable ASCII") { try s.setProperty("kernelopts", of: "work", to: "a\u{1b}[2J") }
        assertDomainError("QubesPropertyValueError", "at most") { try s.setGlobalProperty("default_qrexec_timeout", to: "99999999") }
        // What a real domain needs still goes through.
        for (p, v) in [("maxmem", "16384"), ("memory", "1048576"), ("vcpus", "512"), ("qrexec_timeout", "3600"),
                       ("kernel", "6.1.0-13-amd64"), ("kernel", ""), ("kernelopts", "quiet console=hvc0 swiotlb=8192")] {
            try s.setProperty(p, of: "work", to: v)
        }
        XCTAssertEqual(try s.property("maxmem", of: "work").value, "16384")
    }

    func testPreloadDispvmMaxIsBounded() throws {
        let (s, _) = try populatedStore(self)
        for v in ["64", "9", "-1", "lots", "1e3"] {
            assertDomainError("QubesValueError", "preload-dispvm-max") { try s.setFeature("preload-dispvm-max", of: "work", to: v) }
        }
        try s.setFeature("preload-dispvm-max", of: "work", to: "8")
        try s.setFeature("preload-dispvm-max", of: "work", to: "0")
        try s.setFeature("preload-dispvm-max", of: "work", to: "")
    }

    /// Names refused as Qubes refuses them, and stricter: reserved words in any
    /// case, and names a person would read as an existing domain's.
    func testConfusableAndReservedNamesRefused() throws {
        let (s, _) = try populatedStore(self)
        try s.create("vault", class: .appVM, label: "black", template: "fedora")
        for n in ["vauIt", "Vault", "VAULT", "vau1t", "vauLt", "w0rk", "Work", "fed0ra"] {
            assertDomainError("QubesValueError", "too easily read as") { try s.create(n, class: .appVM, label: "red", template: "fedora") }
        }
        for n in ["Dom0", "DOM0", "dom0", "None", "none", "NONE", "default", "Default", "Domain-0", "domain-0"] {
            assertDomainError("QubesValueError", "reserved") { try s.create(n, class: .appVM, label: "red", template: "fedora") }
        }
        for n in ["0vault", "-x", "a b", "vault/x", "x-dm", String(repeating: "v", count: 32)] {
            assertDomainError("QubesValueError") { try s.create(n, class: .appVM, label: "red", template: "fedora") }
        }
        try s.create("vault2", class: .appVM, label: "red", template: "fedora")
        try s.create("personal", class: .appVM, label: "red", template: "fedora")
    }

    func testSetParseAndValidate() throws {
        let (s, _) = try populatedStore(self)
        try s.setProperty("memory", of: "work", to: "800")
        XCTAssertEqual(try get(s, "memory", "work"), "default=False type=int 800")
        try s.setProperty("autostart", of: "work", to: "true")
        XCTAssertEqual(try get(s, "autostart", "work"), "default=False type=bool True")
        try s.setProperty("autostart", of: "work", to: "0")
        XCTAssertEqual(try s.property("autostart", of: "work").value, "False")
        try s.setProperty("label", of: "work", to: "red")
        XCTAssertEqual(try s.domain("work").label, Label.builtin[0])
        try s.setProperty("default_user", of: "work", to: "alice")
        for (p, v, msg) in [("memory", "-1", "positive integer"), ("memory", "lots", "positive integer"), ("vcpus", "0", "positive"),
                            ("autostart", "maybe", "True or False"), ("virt_mode", "full", "pv, pvh or hvm"),
                            ("default_user", "bad user", "user name"), ("vmm", "Bad Provider", "provider name"),
                            ("kernelopts", "a\nb", "newline")] {
            assertDomainError("QubesPropertyValueError", msg) { try s.setProperty(p, of: "work", to: v) }
        }
        assertDomainError("QubesPropertyValueError", "work: invalid value '-1' for property 'memory'") { try s.setProperty("memory", of: "work", to: "-1") }
        assertDomainError("QubesLabelNotFoundError", "pink") { try s.setProperty("label", of: "work", to: "pink") }
        assertDomainError("QubesPropertyAccessError", "read-only") { try s.setProperty("name", of: "work", to: "w2") }
        assertDomainError("QubesPropertyAccessError", "read-only") { try s.setProperty("uuid", of: "work", to: "x") }
        assertDomainError("QubesNoSuchPropertyError") { try s.setProperty("template_for_dispvms", of: "fedora", to: "True") }
        assertDomainError("QubesPropertyValueError", "cannot be None") { try s.setProperty("template", of: "work", to: "") }
        // Failed sets change nothing.
        XCTAssertEqual(try s.property("memory", of: "work").value, "800")
    }

    func testResetAndRequired() throws {
        let (s, _) = try populatedStore(self)
        try s.setProperty("memory", of: "work", to: "1000")
        try s.resetProperty("memory", of: "work")
        XCTAssertEqual(try get(s, "memory", "work"), "default=True type=int 400")
        try s.resetProperty("memory", of: "work")   // no-op
        assertDomainError("QubesPropertyAccessError", "no default") { try s.resetProperty("label", of: "work") }
        assertDomainError("QubesPropertyAccessError", "no default") { try s.resetProperty("template", of: "work") }
        assertDomainError("QubesPropertyAccessError", "read-only") { try s.resetProperty("qid", of: "work") }
        XCTAssertEqual(try s.snapshot().propertyDefault("memory", of: "work")?.value, "400")
        XCTAssertNil(try s.snapshot().propertyDefault("label", of: "work"))
        XCTAssertFalse(try s.snapshot().propertyHelp("memory", of: "work").isEmpty)
    }

    func testTemplateInheritance() throws {
        let (s, _) = try populatedStore(self)
        try s.setProperty("memory", of: "fedora", to: "1234")
        try s.setProperty("default_user", of: "fedora", to: "fed")
        try s.setProperty("kernelopts", of: "fedora", to: "quiet")
        try s.setProperty("vmm", of: "fedora", to: "libvirt")
        try s.setProperty("autostart", of: "fedora", to: "True")
        XCTAssertEqual(try get(s, "memory", "work"), "default=True type=int 1234")
        XCTAssertEqual(try get(s, "default_user", "work"), "default=True type=str fed")
        XCTAssertEqual(try get(s, "kernelopts", "work"), "default=True type=str quiet")
        XCTAssertEqual(try get(s, "vmm", "work"), "default=True type=str libvirt")
        XCTAssertEqual(try get(s, "autostart", "work"), "default=True type=bool False", "autostart is not inherited")
        try s.setProperty("memory", of: "work", to: "500")
        XCTAssertEqual(try get(s, "memory", "work"), "default=False type=int 500")
        // Global defaults reach through the template chain.
        try s.setGlobalProperty("default_qrexec_timeout", to: "99")
        XCTAssertEqual(try get(s, "qrexec_timeout", "work"), "default=True type=int 99")
        try s.setProperty("qrexec_timeout", of: "fedora", to: "30")
        XCTAssertEqual(try get(s, "qrexec_timeout", "work"), "default=True type=int 30")
        // Switching template switches inherited values.
        try s.create("debian", class: .templateVM, label: "red")
        try s.setProperty("template", of: "work", to: "debian")
        XCTAssertEqual(try get(s, "default_user", "work"), "default=True type=str user")
        XCTAssertEqual(try get(s, "vmm", "work"), "default=True type=str native")
    }

    func testGlobalProperties() throws {
        let (s, _) = try populatedStore(self)
        let snap = s.snapshot()
        XCTAssertTrue(snap.globalPropertyNames.contains("default_vmm"))
        XCTAssertEqual(try s.globalProperty("default_vmm").qubesGetLine, "default=True type=str native")
        XCTAssertEqual(try s.globalProperty("default_netvm").qubesGetLine, "default=True type=vm ")
        XCTAssertEqual(try s.globalProperty("default_guivm").qubesGetLine, "default=True type=vm dom0")
        try s.setGlobalProperty("default_vmm", to: "xen")
        XCTAssertEqual(try s.property("vmm", of: "work").value, "xen")
        try s.resetGlobalProperty("default_vmm")
        XCTAssertEqual(try s.property("vmm", of: "work").value, "native")
        assertDomainError("QubesNoSuchPropertyError", "global property 'nope'") { try s.globalProperty("nope") }
        assertDomainError("QubesPropertyValueError") { try s.setGlobalProperty("default_qrexec_timeout", to: "x") }
        // The store's defaultVmm comes from the host config.
        let dir = makeTempDir(self)
        let other = try openStore(dir, defaultVmm: "libvirt")
        XCTAssertEqual(try other.globalProperty("default_vmm").value, "libvirt")
    }

    func testNetvmRules() throws {
        let (s, _) = try populatedStore(self)
        try s.create("sys-net", class: .appVM, label: "red", template: "fedora", properties: ["provides_network": "True"])
        try s.create("sys-firewall", class: .appVM, label: "green", template: "fedora",
                     properties: ["provides_network": "True", "netvm": "sys-net"])
        assertDomainError("QubesPropertyValueError", "does not provide network") { try s.setProperty("netvm", of: "work", to: "fedora") }
        assertDomainError("QubesPropertyValueError", "own netvm") { try s.setProperty("netvm", of: "sys-net", to: "sys-net") }
        assertDomainError("QubesPropertyValueError", "loop") { try s.setProperty("netvm", of: "sys-net", to: "sys-firewall") }
        // sys-net's netvm is its default: default_netvm=sys-firewall would loop sys-net -> sys-firewall -> sys-net.
        assertDomainError("QubesPropertyValueError", "loop") { try s.setGlobalProperty("default_netvm", to: "sys-firewall") }
        try s.setProperty("netvm", of: "sys-net", to: "")
        try s.setGlobalProperty("default_netvm", to: "sys-firewall")
        XCTAssertEqual(try get(s, "netvm", "work"), "default=True type=vm sys-firewall")
        XCTAssertEqual(try get(s, "netvm", "fedora"), "default=True type=vm ", "templates have no network by default")
        XCTAssertEqual(try get(s, "netvm", "sys-firewall"), "default=False type=vm sys-net")
        XCTAssertEqual(try get(s, "netvm", "sys-net"), "default=False type=vm ")
        // A domain is never its own default netvm.
        try s.setProperty("netvm", of: "sys-firewall", to: "")
        try s.resetProperty("netvm", of: "sys-firewall")
        XCTAssertEqual(try get(s, "netvm", "sys-firewall"), "default=True type=vm ")
        assertDomainError("QubesVMInUseError", "global default_netvm") { try s.remove("sys-firewall") }
    }

    func testNetvmLoopThroughDefaultIsRefused() throws {
        let (s, _) = try populatedStore(self)
        try s.create("sys-net", class: .appVM, label: "red", template: "fedora", properties: ["provides_network": "True", "netvm": ""])
        try s.create("sys-firewall", class: .appVM, label: "green", template: "fedora",
                     properties: ["provides_network": "True", "netvm": "sys-net"])
        try s.setGlobalProperty("default_netvm", to: "sys-firewall")
        XCTAssertEqual(try get(s, "netvm", "sys-net"), "default=False type=vm ")
        // Resetting sys-net's netvm would make it use sys-firewall, which uses sys-net.
        assertDomainError("QubesPropertyValueError", "loop") { try s.resetProperty("netvm", of: "sys-net") }
        assertDomainError("QubesVMInUseError", "netvm of") { try s.setProperty("provides_network", of: "sys-net", to: "False") }
        XCTAssertEqual(try get(s, "netvm", "sys-net"), "default=False type=vm ")
    }

    func testDisposables() throws {
        let (s, _) = try populatedStore(self)
        assertDomainError("QubesPropertyValueError", "not a disposable template") { try s.createDisposable(from: "work") }
        try s.setProperty("template_for_dispvms", of: "work", to: "True")
        try s.setProperty("netvm", of: "work", to: "")
        let d = try s.createDisposable(from: "work", caller: "work")
        XCTAssertEqual(d.klass, .dispVM)
        XCTAssertTrue(d.name.hasPrefix("disp"))
        XCTAssertEqual(d.label.name, "blue", "a disposable takes its template's label")
        XCTAssertEqual(try get(s, "label", d.name), "default=True type=label blue")
        XCTAssertEqual(try get(s, "auto_cleanup", d.name), "default=False type=bool True")
        XCTAssertEqual(try s.snapshot().rootSource(of: d.name), "fedora")
        XCTAssertEqual(try s.tags(of: d.name), ["created-by-work", "isolation-native"])
        let named = try s.create("dvm-named", class: .dispVM, label: "red", template: "work")
        XCTAssertEqual(named.label.name, "red")
        XCTAssertEqual(try get(s, "auto_cleanup", "dvm-named"), "default=True type=bool False")
        assertDomainError("QubesVMInUseError", "disposables") { try s.setProperty("template_for_dispvms", of: "work", to: "False") }
        try s.setGlobalProperty("default_dispvm", to: "work")
        XCTAssertEqual(try get(s, "default_dispvm", "fedora"), "default=True type=vm work")
        assertDomainError("QubesPropertyValueError", "not a disposable template") { try s.setProperty("default_dispvm", of: "work", to: "fedora") }
    }
}
