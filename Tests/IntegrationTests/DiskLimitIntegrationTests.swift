// Issue 11, findings 2 and 5, through a real native domain: what a domain
// writes to its root and its private volume lands in bounded volumes, and a
// deep tree it builds never reaches a walk on the host.
import Domains
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Host

final class DiskLimitIntegrationTests: XCTestCase {
    func testRootChangesAndDeepTreesStayOffTheHostDisk() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.runtime.start("work")
        let runDir = h.daemon.volumes.runDir("work")

        // /rw is the private image (2 GiB), / has its changes in a tmpfs of 10 GiB.
        var r = try h.run("work", "df -k /rw / | tail -n 2")
        XCTAssertEqual(r.0, 0, r.2)
        let sizes = r.1.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        XCTAssertEqual(sizes.count, 2, r.1)
        XCTAssertLessThanOrEqual(Int(sizes[0][1]) ?? 0, 2 << 20, "private: at most 2 GiB (in KiB): \(r.1)")
        XCTAssertLessThanOrEqual(Int(sizes[1][1]) ?? 0, 10 << 20, "root changes: at most 10 GiB (in KiB): \(r.1)")

        // 32 MiB and a tree 1,500 levels deep written to the root: none of it on the host.
        let deep = "i=0; while [ $i -lt 1500 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done"
        r = try h.run("work", "dd if=/dev/zero of=/var/tmp/big bs=1M count=32 2>/dev/null && cd /var/tmp && \(deep) && echo ok")
        XCTAssertEqual(r.1, "ok\n", r.2)
        XCTAssertLessThan(FileOps.diskUsage(runDir), 1 << 20, "the root's changes are not in the host's run dir")
        try h.daemon.runtime.shutdown("work", wait: true)
        XCTAssertFalse(FileOps.exists(runDir))
        // The start and stop with the private image mounted and unmounted (printed, not asserted).
        var starts: [Double] = [], stops: [Double] = []
        for _ in 0..<5 {
            var t0 = Self.now()
            try h.daemon.runtime.start("work")
            starts.append(Self.now() - t0)
            t0 = Self.now()
            try h.daemon.runtime.shutdown("work", wait: true)
            stops.append(Self.now() - t0)
        }
        print("disk limits: native start median \(starts.sorted()[2] * 1000) ms, shutdown --wait median \(stops.sorted()[2] * 1000) ms")
        XCTAssertNil(LoopDevice.mountedDevice(at: h.daemon.volumes.privateDir("work")), "halted: the private image is unmounted")
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
