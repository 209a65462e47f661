// The Xen tier from the host's test run: scripts/xen-tests boots Xen under
// QEMU (TCG) once, runs every Xen suite of this same test bundle in dom0
// (scripts/xen-run), and exits with the bundle's status. Anything that fails
// inside (a test, Xen, dom0's boot, a timeout) fails this test, with dom0's
// output in the message: nothing here is skipped because "Xen is not running".
import Foundation
import XCTest

final class XenTierTests: XCTestCase {
    static let kit = ProcessInfo.processInfo.environment["ODYSSEY_XEN_KIT_DIR"] ?? "/var/lib/odyssey/xen-kit"

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
        // Idempotent and quick once built (make test runs it before the tests).
        try GuestKitTests.tool(Build.root + "/scripts/xen-kit", ["--prefix", Self.kit])
        let started = Date()
        let (status, output) = try Self.runMerged(Build.root + "/scripts/xen-tests", ["--kit", Self.kit, Build.dir])
        let seconds = Date().timeIntervalSince(started)
        print(output.split(separator: "\n").filter { $0.hasPrefix("xen-run:") || $0.contains("Executed") }.joined(separator: "\n"))
        print(String(format: "XenTierTests: the Xen tier took %.1f s (one boot of Xen + dom0, every Xen suite)", seconds))
        guard status == 0 else {
            XCTFail("the Xen tier failed (scripts/xen-tests exited \(status)); dom0's output and xen-run's report:\n"
                    + String(output.suffix(12_000)))
            return
        }
        // The Xen bodies really ran (they fail, never skip, under ODYSSEY_XEN_TIER).
        for test in ["XenConformanceTests.testConformanceUnderXen", "XenDomUTests.testRealDomUBootsIsAdoptedAfterReopenAndIsSeenDestroyedBehindOurBack"] {
            XCTAssertTrue(output.contains("Test Case '\(test)' passed"), "\(test) did not pass in dom0:\n" + String(output.suffix(6000)))
        }
        XCTAssertTrue(output.contains(" with 0 failures"), "no XCTest summary from dom0:\n" + String(output.suffix(6000)))
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
