// The receiver's system call filter, probed directly: what it refuses stays
// refused with the x32 bit set (a jump one too far once let every x32 call
// through; found by review).
import Foundation
import XCTest

final class FilecopyFilterTests: XCTestCase {
    func testFilterRefusesX32CallsToo() throws {
        let root = AddonHarness.packageRoot
        let dir = NSTemporaryDirectory() + "filter-probe-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = root + "/Plugins/addons/filecopy/src"
        let build = try run("/usr/bin/cc", ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", src,
                                             "-I", root + "/Plugins/addons/common/include", "-I", root + "/Sources/PluginABI/include",
                                             "-o", dir + "/probe", root + "/Tests/Fixtures/addons/filter_probe.c", src + "/syscall_filter.c"])
        XCTAssertEqual(build.status, 0, build.output)
        let r = try run(dir + "/probe", [])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output, "getpid allowed, getppid EPERM, x32 getppid EPERM\n")
    }

    private func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
