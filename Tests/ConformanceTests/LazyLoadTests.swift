// vmm-libvirt and vmm-xen open their C library (libvirt.so.0, libxenlight)
// at the first open() of an instance, not when the plugin is loaded. Here:
// loading maps neither library; a library that cannot be loaded, or lacks a
// symbol, leaves the plugin loaded and fails open() with ODY_E_BACKEND and a
// message naming the library or the symbol, and the host keeps going.
//
// A library is loaded once per process, so each case runs in a child
// process: this test binary again, filtered to LazyLoadChild, with stub
// libraries (built with cc) first on its LD_LIBRARY_PATH, which the dynamic
// linker reads at exec.
import Foundation
import Host
import PluginABI
import XCTest

final class LazyLoadTests: XCTestCase {
    func testLoadingMapsNoBackendLibraryUntilOpen() throws {
        try runChild("real")
    }

    func testUnloadableLibvirtFailsOpenClearly() throws {
        let dir = try stubs()
        // A libvirt.so.0 whose own dependency is missing.
        try cc(["-shared", "-fPIC", "-Wl,-soname,libody-absent.so.0", "-o", dir + "/libody-absent.so.0", "-x", "c", "/dev/null"])
        try stubLibrary(dir, soname: "libvirt.so.0", symbols: [], extra: ["-L", dir, "-Wl,--no-as-needed", "-l:libody-absent.so.0"])
        try FileManager.default.removeItem(atPath: dir + "/libody-absent.so.0")
        try runChild("libvirt-unloadable", libraryPath: dir)
    }

    func testLibvirtMissingSymbolIsNamed() throws {
        let dir = try stubs()
        let syms = try shimFunctions("Plugins/vmm-libvirt/CLibvirt/shim.h", macro: "ODY_VIR_FN")
        XCTAssertTrue(syms.contains("virDomainGetMetadata"))
        try stubLibrary(dir, soname: "libvirt.so.0", symbols: syms.filter { $0 != "virDomainGetMetadata" })
        try runChild("libvirt-missing-symbol", libraryPath: dir)
    }

    func testLibxlMissingSymbolIsNamed() throws {
        let dir = try stubs()
        let syms = try shimFunctions("Plugins/vmm-xen/CXenlight/shim.h", macro: "ODY_XL_FN")
        XCTAssertTrue(syms.contains("libxl_domain_unpause"))
        try stubLibrary(dir, soname: "libxenlight.so.4.17", symbols: syms.filter { $0 != "libxl_domain_unpause" })
        try runChild("xen-missing-symbol", libraryPath: dir)
    }

    // MARK: helpers

    private var stubDirs: [String] = []

    override func tearDown() {
        for d in stubDirs { try? FileManager.default.removeItem(atPath: d) }
        stubDirs.removeAll()
        super.tearDown()
    }

    private func stubs() throws -> String {
        let d = NSTemporaryDirectory() + "odyssey-lazyload-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        stubDirs.append(d)
        return d
    }

    /// The function names a plugin's shim declares pointer types for.
    private func shimFunctions(_ path: String, macro: String) throws -> [String] {
        let text = try String(contentsOfFile: Build.repoRoot + "/" + path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix(macro + "("), let close = line.firstIndex(of: ")") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: macro.count + 1)..<close])
        }
    }

    /// A shared library called `soname` defining `symbols` (never called: the
    /// cases fail before any call).
    private func stubLibrary(_ dir: String, soname: String, symbols: [String], extra: [String] = []) throws {
        let src = dir + "/\(soname).c"
        try symbols.map { "int \($0)(void) { return -1; }\n" }.joined().write(toFile: src, atomically: true, encoding: .utf8)
        try cc(["-shared", "-fPIC", "-Wl,-soname,\(soname)", "-o", dir + "/" + soname, src] + extra)
    }

    private func cc(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc"] + args
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("cc failed (\(args.joined(separator: " "))); no C compiler?") }
    }

    /// Runs LazyLoadChild in a fresh process of this test binary.
    private func runChild(_ scenario: String, libraryPath: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = ["ConformanceTests.LazyLoadChild/testScenario"]
        var env = ProcessInfo.processInfo.environment
        env["ODYSSEY_LAZYLOAD_SCENARIO"] = scenario
        env["ODYSSEY_BUILD_DIR"] = Build.dir
        if let libraryPath { env["LD_LIBRARY_PATH"] = libraryPath + (env["LD_LIBRARY_PATH"].map { ":" + $0 } ?? "") }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "child \(scenario) failed:\n\(text)", file: file, line: line)
        XCTAssertTrue(text.contains("Executed 1 test, with 0 failures"), "child \(scenario) ran no test:\n\(text)", file: file, line: line)
    }
}

/// The child side of LazyLoadTests; skipped when run directly.
final class LazyLoadChild: XCTestCase {
    /// Whether a mapping of this process has `needle` in its path. (Read with
    /// FileHandle: /proc files report size 0, which String(contentsOfFile:) trusts.)
    static func mapped(_ needle: String) -> Bool {
        guard let maps = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() else { return false }
        XCTAssertFalse(maps.isEmpty, "cannot read /proc/self/maps")
        return String(decoding: maps, as: UTF8.self).contains(needle)
    }

    func testScenario() throws {
        guard let scenario = ProcessInfo.processInfo.environment["ODYSSEY_LAZYLOAD_SCENARIO"] else {
            throw XCTSkip("run by LazyLoadTests in a child process")
        }
        let fx = try HostFixture(products: ["vmm-libvirt", "vmm-xen"], configBody: """
        [vmm]
        default = "libvirt"
        [vmm.libvirt]
        uri = "test:///default"
        [vmm.xen]
        state_dir = "@DIR@/xen-state"
        """)
        // Both plugins load whatever the state of their libraries...
        XCTAssertEqual(fx.backends.registry.refused, [], "a plugin was refused")
        XCTAssertNotNil(fx.backends.registry.factory(.vmm, "libvirt"))
        XCTAssertNotNil(fx.backends.registry.factory(.vmm, "xen"))
        // ...and loading them maps neither library.
        XCTAssertFalse(Self.mapped("/libvirt.so.0"), "libvirt mapped by merely loading vmm-libvirt")
        XCTAssertFalse(Self.mapped("/libxenlight.so"), "libxenlight mapped by merely loading vmm-xen")

        switch scenario {
        case "real":
            let lv = try fx.backends.vmm("libvirt")
            XCTAssertTrue(Self.mapped("/libvirt.so.0"), "open did not load libvirt")
            XCTAssertFalse(Self.mapped("/libxenlight.so"), "opening libvirt loaded libxenlight")
            // The test driver's own domain "test" carries no Odyssey metadata: not ours, not listed.
            XCTAssertEqual(try lv.list(), [])
        case "libvirt-unloadable":
            for attempt in 1...2 {  // a failed load is not kept: the next open tries again
                let e = expectError(.backend, "open libvirt, attempt \(attempt)") { _ = try fx.backends.vmm("libvirt") }
                XCTAssertTrue(e?.message.contains("cannot load libvirt (libvirt.so.0): libody-absent.so.0: cannot open shared object file") == true,
                              "\(String(describing: e))")
            }
            XCTAssertEqual(fx.backends.openVmms, [])
        case "libvirt-missing-symbol":
            let e = expectError(.backend, "open libvirt") { _ = try fx.backends.vmm("libvirt") }
            XCTAssertTrue(e?.message.contains("libvirt.so.0 lacks the symbol virDomainGetMetadata") == true, "\(String(describing: e))")
        case "xen-missing-symbol":
            let e = expectError(.backend, "open xen") { _ = try fx.backends.vmm("xen") }
            XCTAssertTrue(e?.message.contains("libxenlight.so.4.17 lacks the symbol libxl_domain_unpause") == true, "\(String(describing: e))")
            // The other backend is unaffected.
            XCTAssertEqual(try fx.backends.vmm("libvirt").list(), [], "libvirt answers (its test domain is not ours)")
            XCTAssertEqual(fx.backends.openVmms, ["libvirt"])
        default:
            XCTFail("unknown scenario \(scenario)")
        }
    }
}
