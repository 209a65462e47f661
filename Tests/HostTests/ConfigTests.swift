import XCTest
@testable import Host

final class ConfigTests: XCTestCase {
    func parse(_ text: String) throws -> OdysseyConfig { try OdysseyConfig.parse(text, path: "/etc/odyssey/o.toml") }

    func expectError(_ text: String, _ contains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains(contains), "got \"\(msg)\", expected \"\(contains)\"", file: file, line: line)
            XCTAssertTrue(msg.hasPrefix("/etc/odyssey/o.toml"), "error names the file: \(msg)", file: file, line: line)
        }
    }

    func testDefaultsAndRelativePaths() throws {
        let c = try parse("state_dir = \"state\"\nplugin_dirs = [\"p\", \"/abs\"]\n")
        XCTAssertEqual(c.stateDir, "/etc/odyssey/state")
        XCTAssertEqual(c.pluginDirs, ["/etc/odyssey/p", "/abs"])
        XCTAssertEqual(c.adminSocket, OdysseyConfig.defaultSocket)
        XCTAssertEqual(c.role(.vmm).defaultFactory, "native")
        XCTAssertEqual(c.role(.vchan).defaultFactory, "socket")
    }

    func testRolesAndBackendSections() throws {
        let c = try parse("""
            [vmm]
            default = "libvirt"
            [vmm.libvirt]
            uri = "test:///default"
            timeout = 30
            verbose = true
            [vchan]
            default = "socket"
            """)
        XCTAssertEqual(c.role(.vmm).defaultFactory, "libvirt")
        XCTAssertEqual(c.backendValue(.vmm, factory: "libvirt", key: "uri"), "test:///default")
        XCTAssertEqual(c.backendValue(.vmm, factory: "libvirt", key: "timeout"), "30")
        XCTAssertEqual(c.backendValue(.vmm, factory: "libvirt", key: "verbose"), "true")
    }

    func testErrorsNameTheKey() {
        expectError("stat_dir = \"x\"", "stat_dir: unknown key")
        expectError("state_dir = 3", "state_dir: expected a string")
        expectError("state_dir = \"\"", "state_dir: must not be empty")
        expectError("plugin_dirs = \"x\"", "plugin_dirs: expected an array")
        expectError("plugin_dirs = [1]", "plugin_dirs[0]: expected a string")
        expectError("log_level = \"loud\"", "log_level: 'loud' is not one of")
        expectError("ask_timeout = 0", "ask_timeout: expected seconds")
        expectError("vmm = \"native\"", "vmm: expected a table")
        expectError("[vmm]\ndefault = \"Bad Name\"", "vmm.default: 'Bad Name' is not a factory name")
        expectError("[vmm]\nfoo = 1", "vmm.foo: unknown key")
        expectError("[vmm.libvirt]\nuri = { a = 1 }", "[vmm.libvirt] uri: unsupported value type")
        expectError("state_dir = ", "o.toml:1:")   // TOML syntax error with line
    }

    /// [limits] (issue 11): safe defaults, every key checked and bounded.
    func testLimitsDefaultsAndErrors() throws {
        let d = try parse("")
        XCTAssertEqual(d.limits, ResourceLimits.defaults)
        XCTAssertEqual(d.limits.dispvmsPerDomain, 4)
        XCTAssertEqual(d.limits.dispvmsTotal, 32)
        let c = try parse("""
            [limits]
            dispvms_per_domain = 2
            dispvms_total = 10
            preload_dispvm_max = 1
            memory_reserve_mib = 2048
            asks_per_source = 8
            """)
        XCTAssertEqual(c.limits.dispvmsPerDomain, 2)
        XCTAssertEqual(c.limits.dispvmsTotal, 10)
        XCTAssertEqual(c.limits.preloadDispvmMax, 1)
        XCTAssertEqual(c.limits.memoryReserveMiB, 2048)
        XCTAssertEqual(c.limits.asksPerSource, 8)
        expectError("[limits]\ndispvms_total = -1", "limits.dispvms_total: expected an integer between 0 and")
        expectError("[limits]\npreload_dispvm_max = 65", "limits.preload_dispvm_max: expected an integer between 0 and 64")
        expectError("[limits]\nasks_per_source = 0", "limits.asks_per_source: expected an integer between 1")
        expectError("[limits]\nmemory_reserve_mib = \"1G\"", "limits.memory_reserve_mib: expected an integer")
        expectError("[limits]\ndispvms = 3", "limits.dispvms: unknown key")
        expectError("limits = 3", "limits: expected a table")
    }

    func testBackendKeysCheckedAgainstManifest() throws {
        let t = TempDir()
        let d = t.sub("plugins")
        try Fixture.build("fixture", in: d)
        // The fixture's manifest declares no config keys: any key is unknown.
        let c = try OdysseyConfig.parse("plugin_dirs = [\"\(d)\"]\n[vmm.fixture]\nuri = \"x\"\n[vmm.absent]\nk = 1\n", path: t.path + "/o.toml")
        let b = Backends.load(config: c, logger: .init(label: "t"), events: EventBus())
        let (errors, warnings) = b.checkBackendConfig()
        XCTAssertEqual(errors, ["\(t.path)/o.toml: [vmm.fixture] uri: unknown key (it takes no keys)"])
        XCTAssertTrue(warnings.contains { $0.contains("[vmm.absent]: no loaded plugin provides this factory") })
        XCTAssertTrue(warnings.contains { $0.contains("vmm.default: no loaded plugin provides vmm factory 'native'") })
    }
}

final class BackendPathConfigTests: XCTestCase {
    func testPathKeysResolveAgainstTheConfigFile() throws {
        let t = TempDir()
        let d = t.sub("plugins")
        try Fixture.build("fixture", in: d)
        // Declare one path key and one string key in the fixture's manifest.
        let m = d + "/fixture.json"
        var text = try String(contentsOfFile: m, encoding: .utf8)
        text = text.replacingOccurrences(of: "{\"name\": \"fixture\", \"kind\": \"vmm\"}",
                                         with: "{\"name\": \"fixture\", \"kind\": \"vmm\", \"config\": {\"dir\": {\"type\": \"path\"}, \"label\": {\"type\": \"string\"}}}")
        try text.write(toFile: m, atomically: true, encoding: .utf8)
        let c = try OdysseyConfig.parse("plugin_dirs = [\"\(d)\"]\n[vmm.fixture]\ndir = \"state/x\"\nlabel = \"state/x\"\n", path: t.path + "/o.toml")
        let b = Backends.load(config: c, logger: .init(label: "t"), events: EventBus())
        let values = b.instanceConfig(.vmm, "fixture")
        XCTAssertEqual(values["dir"], t.path + "/state/x")
        XCTAssertEqual(values["label"], "state/x", "only path keys are resolved")
    }
}
