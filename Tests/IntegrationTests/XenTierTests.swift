// The Xen tier from the host's test run: scripts/xen-tests boots Xen under
// QEMU (TCG) once, runs every Xen suite of this same test bundle in dom0
// (scripts/xen-run), and exits with the bundle's status. Anything that fails
// inside (a test, Xen, dom0's boot, a timeout) fails this test, with dom0's
// output in the message: nothing here is skipped because "Xen is not running".
import Foundation
import XCTest

final class XenTierTests: XCTestCase {
    /// Where scripts/xen-kit keeps its kits (one directory per checksum of its inputs).
    static let kits = ProcessInfo.processInfo.environment["ODYSSEY_XEN_KITS"] ?? "/var/lib/odyssey/xen-kit"

    /// This tree's kit: built if needed (quick once built), by this tree's scripts.
    static func kitDir() throws -> String {
        let out = try GuestKitTests.tool(Build.root + "/scripts/xen-kit", ["--prefix", kits, "--print-dir"])
        guard let dir = out.split(separator: "\n").last(where: { $0.hasPrefix("/") }) else {
            throw KitTestError("scripts/xen-kit --print-dir printed no directory: \(out)")
        }
        return String(dir)
    }

    override func setUpWithError() throws {
        if ProcessInfo.processInfo.environment["ODYSSEY_XEN_TIER"] != nil {
            throw XCTSkip("already inside the Xen tier (dom0): no Xen under Xen")
        }
        guard geteuid() == 0 else { throw XCTSkip("the Xen tier boots QEMU with the host's root as dom0's: run the tests as root") }
        guard GuestKitTests.qemu != nil else {
            throw XCTSkip("qemu-system-x86_64 is not installed (scripts/install-deps installs qemu-system-x86): the Xen tier cannot run")
        }
    }

    func testXenSuitesPassInDom0() throws {
        let started = Date()
        // xen-tests builds or finds this tree's kit itself.
        let (status, output) = try Self.runMerged(Build.root + "/scripts/xen-tests", ["--kits", Self.kits, Build.dir])
        let seconds = Date().timeIntervalSince(started)
        // The tier's verdicts and numbers in the host's log: boot time, each conformance check, domU times.
        print(output.split(separator: "\n").filter {
            $0.hasPrefix("xen-run:") || $0.hasPrefix("XenConformanceTests: check") || $0.hasPrefix("XenDomUTests:")
                || $0.hasPrefix("XenVchanDomUTests:") || $0.hasPrefix("XenDomainTests:") || $0.contains("Executed")
        }.joined(separator: "\n"))
        print(String(format: "XenTierTests: the Xen tier took %.1f s (one boot of Xen + dom0, every Xen suite)", seconds))
        guard status == 0 else {
            XCTFail("the Xen tier failed (scripts/xen-tests exited \(status)); dom0's output and xen-run's report:\n"
                    + String(output.suffix(12_000)))
            return
        }
        // The Xen bodies really ran (they fail, never skip, under ODYSSEY_XEN_TIER).
        for test in ["XenConformanceTests.testConformanceUnderXen", "XenDomUTests.testRealDomUBootsIsAdoptedAfterReopenAndIsSeenDestroyedBehindOurBack",
                     "XenVchanConformanceTests.testConformanceUnderXen", "XenVchanConformanceTests.testXenSpecificsUnderXen",
                     "XenVchanConformanceTests.testStaticClientUnderXen", "XenVchanConformanceTests.testHostilePeerUnderXen",
                     "XenVchanConformanceTests.testDomUClientUnderXen", "XenVchanConformanceTests.testBridgedChannelIsASocketUnderXen",
                     "XenDomainTests.testADomUStartsAndRunsCommandsOverVchanXen"] {
            XCTAssertTrue(output.contains("Test Case '\(test)' passed"), "\(test) did not pass in dom0:\n" + String(output.suffix(6000)))
        }
        XCTAssertTrue(output.contains(" with 0 failures"), "no XCTest summary from dom0:\n" + String(output.suffix(6000)))
    }

    /// The harness's own failures are clear: a timeout is exit 124 with the
    /// reason and the serial log's tail, never a hang.
    func testXenRunTimeoutIsReported() throws {
        let kit = try Self.kitDir()
        let (status, output) = try Self.runMerged(Build.root + "/scripts/xen-run",
                                                  ["--kit", kit, "--timeout", "5", "--", "/bin/sleep", "600"])
        XCTAssertEqual(status, 124, output)
        XCTAssertTrue(output.contains("timed out after 5 s"), output)
        XCTAssertTrue(output.contains("last lines of"), "no serial log tail: \(output)")
        Self.removeKeptRun(output)
    }

    /// dom0 dying (here: its PID 1 exits, a kernel panic, Xen halts with
    /// noreboot) ends the run at once with exit 125, the panic named, and
    /// the serial log's tail; not at the timeout.
    func testDom0DeathIsReportedWithTheSerialLog() throws {
        let kit = try Self.kitDir()
        // A kit whose dom0-stage2 exits at once; everything else is the real kit's.
        // Not under /tmp: dom0 has its own /tmp, where the host's is invisible.
        let bad = "/var/tmp/odyssey-xen-badkit-\(UUID().uuidString.prefix(6))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: bad, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: bad) }
        for entry in ["xen.elf", "dom0", "domu", "tools"] {
            try fm.createSymbolicLink(atPath: "\(bad)/\(entry)", withDestinationPath: "\(kit)/\(entry)")
        }
        try "#!/bin/sh\nexit 3\n".write(toFile: bad + "/dom0-stage2", atomically: true, encoding: .utf8)
        chmod(bad + "/dom0-stage2", 0o755)
        let (status, output) = try Self.runMerged(Build.root + "/scripts/xen-run",
                                                  ["--kit", bad, "--timeout", "600", "--", "/bin/true"])
        XCTAssertEqual(status, 125, output)
        XCTAssertTrue(output.contains("Xen or dom0 failed to boot"), output)
        XCTAssertTrue(output.contains("Attempted to kill init"), "the panic is not in the report: \(output)")
        Self.removeKeptRun(output)
    }

    /// xen-run keeps a failed run's directory and names it; the tests remove it.
    static func removeKeptRun(_ output: String) {
        for word in output.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" })
        where word.hasPrefix("/tmp/xen-run.") && !word.contains("/serial.log") {
            try? FileManager.default.removeItem(atPath: String(word))
        }
    }

    /// Runs a tool (argv, no shell) with stdout and stderr on one pipe, in order.
    static func runMerged(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process(), pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
