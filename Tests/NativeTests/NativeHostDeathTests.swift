// The host process really dies (SIGKILL) with domains running: the domains
// live on (no PDEATHSIG), and a new host re-adopts them by pid + start time.
// The dying host is this test binary re-run as a child in "helper" mode.
import Foundation
import PluginABI
import XCTest

final class NativeHostDeathTests: NativeTestCase {
    static let helperEnv = "ODY_NATIVE_HELPER_STATE"

    /// Helper mode only (skipped in a normal run): start a domain, report its
    /// pid on stdout, then wait to be SIGKILLed.
    func testHelperStartsDomainThenWaitsForDeath() throws {
        guard let parentDir = ProcessInfo.processInfo.environment[Self.helperEnv] else {
            throw XCTSkip("helper for testDomainSurvivesHostSIGKILL")
        }
        vmm.close()
        host = TestHost(config: ["state_dir": parentDir + "/state", "cgroup_parent": ProcessInfo.processInfo.environment["ODY_NATIVE_HELPER_CG"]!])
        vmm = try VMM(plugin: plugin, host: host)
        dir = parentDir
        let pid = try startDomain("orphan", "trap 'exit 0' TERM; while :; do sleep 100 & wait; done")
        FileHandle.standardOutput.write(Data("ORPHAN-PID \(pid)\n".utf8))
        while true { pause() }
    }

    func testDomainSurvivesHostSIGKILL() throws {
        vmm.close() // the helper is the host now: it takes the state_dir lock
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: exe)
        child.arguments = ["NativeTests.NativeHostDeathTests/testHelperStartsDomainThenWaitsForDeath"]
        var env = ProcessInfo.processInfo.environment
        env[Self.helperEnv] = dir
        env["ODY_NATIVE_HELPER_CG"] = cgParent
        env["ODY_NATIVE_BUILD_DIR"] = LoadedPlugin.buildDirectory
        child.environment = env
        let out = Pipe()
        child.standardOutput = out
        try child.run()
        // Read until the helper reports its domain's pid. A plain read(2):
        // FileHandle.read(upToCount:) waits for the whole count or EOF, and the
        // helper writes one short line and then waits to be killed.
        var text = ""
        var buf = [UInt8](repeating: 0, count: 256)
        let fd = out.fileHandleForReading.fileDescriptor
        while !text.contains("ORPHAN-PID ") || !text.hasSuffix("\n") {
            let n = Glibc.read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            text += String(decoding: buf[0..<n], as: UTF8.self)
        }
        guard let r = text.range(of: "ORPHAN-PID ") else { return XCTFail("helper said: \(text)") }
        let pid = Int32(text[r.upperBound...].prefix { $0.isNumber })!
        Glibc.kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        // The helper's own fixtures (it died before its tearDown).
        try? FileManager.default.removeItem(atPath: "/tmp/odyssey-native-tests-\(child.processIdentifier)")

        // The domain outlived its host and now belongs to init (or a subreaper).
        XCTAssertTrue(Fixtures.processAlive(pid))
        let ppid = (Fixtures.read("/proc/\(pid)/stat") ?? "").split(separator: ")").last?.split(separator: " ")[1]
        XCTAssertNotEqual(ppid.map(String.init), String(child.processIdentifier))

        // A new host (this process) re-adopts it: the dead host's state_dir
        // lock went with it.
        vmm = try VMM(plugin: plugin, host: host)
        let i = try vmm.info("orphan")
        XCTAssertEqual(i.state, ODY_STATE_RUNNING.rawValue)
        XCTAssertEqual(i.pid, pid)
        try vmm.pause("orphan")
        try vmm.unpause("orphan")
        try vmm.shutdown("orphan", wait: true)
        XCTAssertEqual(try vmm.info("orphan").state, ODY_STATE_HALTED.rawValue)
        assertNothingLeft("orphan", pid: pid)
    }
}

final class NativeConcurrencyTests: NativeTestCase {
    /// Many domains started from several threads at once: all run, each in
    /// its own uid range, and all stop cleanly.
    func testManyDomainsFromManyThreads() throws {
        let count = 24
        let names = (0..<count).map { "many\($0)" }
        for n in names { try vmm.define(n, params: params(n, "trap 'exit 0' TERM; while :; do sleep 100 & wait; done")) }
        let failures = Failures()
        let vmm = self.vmm!
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do { try vmm.start(names[i]) } catch { failures.add("\(names[i]): \(error)") }
        }
        XCTAssertEqual(failures.all.count, 0, "\(failures.all)")
        var pids: [String: Int32] = [:]
        var uids = Set<String>()
        for n in names {
            let i = try vmm.info(n)
            XCTAssertEqual(i.state, ODY_STATE_RUNNING.rawValue)
            pids[n] = i.pid
            let status = Fixtures.read("/proc/\(i.pid)/status") ?? ""
            uids.insert(String(status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""))
        }
        XCTAssertEqual(uids.count, count, "every domain has its own uid range")
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do { try vmm.shutdown(names[i], wait: true) } catch { failures.add("\(names[i]): \(error)") }
        }
        XCTAssertEqual(failures.all.count, 0, "\(failures.all)")
        for n in names { assertNothingLeft(n, pid: pids[n]!) }
    }
}

/// Errors collected from concurrent workers.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
