// The ABI contract of vmm-native: handshake, factory, flags, buffers, and
// definition validation. No domains are started, so no root is needed.
import Foundation
import PluginABI
import XCTest

final class NativeABIContractTests: XCTestCase {
    func entry(major: UInt32, minor: UInt32, infoSize: Int = MemoryLayout<ody_plugin_info>.size) throws -> (Int32, ody_plugin_info, String) {
        let p = try LoadedPlugin.load()
        var req = ody_entry_request()
        req.struct_size = UInt32(MemoryLayout<ody_entry_request>.size)
        req.abi_major = major
        req.abi_minor = minor
        var info = ody_plugin_info()
        info.struct_size = UInt32(infoSize)
        var err = newError()
        let rc = p.entry(&req, &info, &err)
        return (rc, info, text(err))
    }

    func testHandshake() throws {
        let (rc, info, _) = try entry(major: ODY_ABI_MAJOR, minor: ODY_ABI_MINOR + 5)
        XCTAssertEqual(rc, ODY_OK.rawValue)
        XCTAssertEqual(info.abi_major, ODY_ABI_MAJOR)
        XCTAssertEqual(info.abi_minor, ODY_ABI_MINOR)
        XCTAssertEqual(String(cString: info.id), "vmm-native")
        XCTAssertEqual(info.factory_count, 1)
        let f = info.factories![0]!.pointee
        XCTAssertEqual(f.kind, ODY_KIND_VMM.rawValue)
        XCTAssertEqual(String(cString: f.name), "native")
        for cap in [ODY_VMM_CAP_PAUSE, ODY_VMM_CAP_LIFECYCLE_EVENTS, ODY_VMM_CAP_MEMORY_LIMIT, ODY_VMM_CAP_NAMESPACES, ODY_VMM_CAP_PERSISTENT] {
            XCTAssertNotEqual(f.capabilities & cap, 0)
        }
        XCTAssertEqual(f.capabilities & ODY_VMM_CAP_HARDWARE_VIRT, 0)
        let ops = f.ops!.assumingMemoryBound(to: ody_vmm_ops.self).pointee
        XCTAssertEqual(Int(ops.struct_size), MemoryLayout<ody_vmm_ops>.size)
        XCTAssertTrue(ops.open != nil && ops.close != nil && ops.define != nil && ops.undefine != nil && ops.start != nil
            && ops.shutdown != nil && ops.kill != nil && ops.pause != nil && ops.unpause != nil && ops.get_info != nil && ops.list != nil)

        let (bad, _, msg) = try entry(major: ODY_ABI_MAJOR + 1, minor: 0)
        XCTAssertEqual(bad, ODY_E_ABI.rawValue)
        XCTAssertTrue(msg.contains("major"), msg)
        let (small, _, _) = try entry(major: ODY_ABI_MAJOR, minor: 0, infoSize: 8)
        XCTAssertEqual(small, ODY_E_ABI.rawValue)
    }

    func testInstanceContract() throws {
        let dir = "/tmp/odyssey-native-abi-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = TestHost(config: ["state_dir": dir])
        let vmm = try VMM(plugin: try LoadedPlugin.load(), host: host)
        defer { vmm.close() }
        // A second instance on the same state_dir is refused, clearly.
        XCTAssertThrowsError(try VMM(plugin: vmm.plugin, host: host)) {
            XCTAssertTrue(($0 as? VMM.Failure)?.message.contains("in use") == true, "\($0)")
        }
        func code(_ body: () throws -> Void) -> Int32? {
            do { try body(); return 0 } catch let f as VMM.Failure { return f.code } catch { return nil }
        }
        XCTAssertEqual(code { try vmm.define("1bad", params: ["root_dir": "/"]) }, ODY_E_INVALID.rawValue)
        XCTAssertEqual(code { try vmm.define("noroot", params: [:]) }, ODY_E_INVALID.rawValue)
        XCTAssertEqual(code { try vmm.define("commas", params: ["root_dir": "/a,b"]) }, ODY_E_INVALID.rawValue)
        XCTAssertEqual(code { try vmm.define("mode", params: ["root_dir": "/", "root_mode": "weird"]) }, ODY_E_INVALID.rawValue)
        XCTAssertEqual(code { try vmm.define("web", params: ["root_dir": "/srv/root", "unknown_key": "ignored"]) }, 0)
        XCTAssertEqual(code { try vmm.define("web", params: ["root_dir": "/srv/root"]) }, ODY_E_EXISTS.rawValue)
        XCTAssertEqual(code { try vmm.define("clash", params: ["root_dir": "/", "uid_base": "1000000"]) }, ODY_E_INVALID.rawValue)
        XCTAssertEqual(code { try vmm.define("mail", params: ["root_dir": "/srv/root"]) }, 0)
        XCTAssertEqual(try vmm.list(), ["mail", "web"])

        var err = newError()
        XCTAssertEqual(vmm.plugin.ops.start(vmm.raw, "web", 1 << 20, &err), ODY_E_FLAGS.rawValue)
        XCTAssertEqual(vmm.plugin.ops.shutdown(vmm.raw, "web", (1 << 9), &err), ODY_E_FLAGS.rawValue)
        var i = ody_domain_info()
        i.struct_size = UInt32(MemoryLayout<ody_domain_info>.size)
        XCTAssertEqual(vmm.plugin.ops.get_info(vmm.raw, "nosuch", &i, 0, &err), ODY_E_NOT_FOUND.rawValue)
        XCTAssertEqual(code { try vmm.shutdown("web") }, ODY_E_STATE.rawValue)
        XCTAssertEqual(code { try vmm.pause("web") }, ODY_E_STATE.rawValue)
        let info = try vmm.info("web")
        XCTAssertEqual(info.state, ODY_STATE_HALTED.rawValue)
        XCTAssertEqual(info.pid, -1)

        var needed = 0
        var tiny = [CChar](repeating: 0, count: 3)
        XCTAssertEqual(vmm.plugin.ops.list(vmm.raw, &tiny, tiny.count, &needed, 0, &err), ODY_E_TOO_SMALL.rawValue)
        XCTAssertEqual(needed, "mail\0web\0".utf8.count)

        // Definitions persist across instances (PERSISTENT).
        vmm.close()
        let again = try VMM(plugin: vmm.plugin, host: host)
        XCTAssertEqual(try again.list(), ["mail", "web"])
        try again.undefine("web")
        XCTAssertEqual(try again.list(), ["mail"])
        again.close()
    }

    /// A broken or missing seccomp profile fails open with the reason: a
    /// domain never runs unfiltered.
    func testBadSeccompProfileFailsOpen() throws {
        let dir = "/tmp/odyssey-native-seccomp-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, String)] = [
            ("{\"rules\": [{\"syscalls\": [\"bpf\"], \"action\": \"errno\", \"errno\": \"EPERM\"}]}", "no comment"),
            ("{\"rules\": [{\"comment\": \"x\", \"syscalls\": [\"bpf\"], \"action\": \"explode\"}]}", "bad or missing action"),
            ("{\"rules\": [", "unexpected end"),
        ]
        for (i, (json, expected)) in cases.enumerated() {
            let path = "\(dir)/p\(i).json"
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            let host = TestHost(config: ["state_dir": "\(dir)/state\(i)", "seccomp_profile": path])
            XCTAssertThrowsError(try VMM(plugin: try LoadedPlugin.load(), host: host)) { e in
                let m = (e as? VMM.Failure)?.message ?? "\(e)"
                XCTAssertTrue(m.contains(path) && m.contains(expected), m)
            }
        }
        let host = TestHost(config: ["state_dir": "\(dir)/state9", "seccomp_profile": "\(dir)/missing.json"])
        XCTAssertThrowsError(try VMM(plugin: try LoadedPlugin.load(), host: host)) { e in
            XCTAssertEqual((e as? VMM.Failure)?.code, ODY_E_NOT_FOUND.rawValue)
        }
    }

    /// Unprivileged, the plugin still opens and defines, logs what is
    /// missing, and start fails with a clear permission error. As root, the
    /// test re-runs itself as nobody.
    func testUnprivilegedStartFailsClearly() throws {
        if geteuid() == 0 {
            let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", exe,
                           "NativeTests.NativeABIContractTests/testUnprivilegedStartFailsClearly"]
            var env = ProcessInfo.processInfo.environment
            env["ODY_NATIVE_BUILD_DIR"] = LoadedPlugin.buildDirectory
            env["HOME"] = "/tmp"
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("passed") && !text.contains("skipped"), text)
            return
        }
        let dir = "/tmp/odyssey-native-unpriv-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let host = TestHost(config: ["state_dir": dir])
        let vmm = try VMM(plugin: try LoadedPlugin.load(), host: host)
        defer { vmm.close() }
        XCTAssertTrue(host.logs.contains { $0.contains("not root") && $0.contains("cgroup") }, "\(host.logs)")
        try vmm.define("web", params: ["root_dir": "/"])
        XCTAssertThrowsError(try vmm.start("web")) { e in
            let f = e as? VMM.Failure
            XCTAssertEqual(f?.code, ODY_E_PERMISSION.rawValue)
            XCTAssertTrue(f?.message.contains("not root") == true && f?.message.contains("uid range") == true, "\(e)")
        }
        XCTAssertEqual(try vmm.info("web").state, ODY_STATE_HALTED.rawValue)
    }
}
