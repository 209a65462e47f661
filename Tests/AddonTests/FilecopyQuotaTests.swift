// FilecopyQuotaTests: the receiver's quotas over time (issue 11, finding
// 16). Per-copy quotas alone let a domain fill the receiver's disk with many
// copies; ~/QubesIncoming as a whole is bounded (incoming_quota_bytes,
// incoming_quota_files: every source's copies together, counted at the start
// of each copy), and the receiving file system keeps min_free_percent free.
import Foundation
import XCTest

final class FilecopyQuotaTests: XCTestCase {
    func stream(_ name: String, bytes: Int) -> FilecopyStream {
        var s = FilecopyStream()
        s.file(name, [UInt8](repeating: 7, count: bytes))
        s.end()
        return s
    }

    /// Copies from another source than the scene's "work".
    func receive(_ scene: FilecopyScene, from source: String, _ s: FilecopyStream) throws -> (AddonHarness.Result, FilecopyReply?) {
        let r = try scene.h.runService("qubes.Filecopy", source: source, in: "personal", stdin: s.bytes)
        return (r, FilecopyReply(r.stdout))
    }

    func testManyCopiesCannotPassTheReceiversByteQuota() throws {
        // Each copy is within its own quota (1500); together they are not.
        // Already there: work/existing (13 bytes) and other/kept (20 bytes).
        let scene = try FilecopyScene(config: ["quota_bytes": "1500", "incoming_quota_bytes": "2000"])
        XCTAssertEqual(try scene.receive(stream("a", bytes: 900)).0.status, 0)
        XCTAssertEqual(try scene.receive(stream("b", bytes: 900)).0.status, 0)
        let r = try scene.receive(stream("c", bytes: 900))
        scene.assertRefused(r, code: EDQUOT)
        XCTAssertEqual(r.1?.name, "c")
        XCTAssertTrue(r.0.stderr.contains("QubesIncoming would hold more bytes than incoming_quota_bytes allows"), r.0.stderr)
        XCTAssertFalse(scene.exists("c"))

        // Per receiver, not per source: another domain finds it full too.
        let other = try receive(scene, from: "third", stream("d", bytes: 900))
        XCTAssertNotEqual(other.0.status, 0)
        XCTAssertEqual(other.1?.code, UInt32(EDQUOT))
        XCTAssertFalse(FileManager.default.fileExists(atPath: scene.h.home("personal") + "/QubesIncoming/third/d"))
        // What still fits lands.
        XCTAssertEqual(try receive(scene, from: "third", stream("small", bytes: 100)).0.status, 0)

        // The receiver's user makes room: copies land again.
        try FileManager.default.removeItem(atPath: scene.incoming + "/a")
        XCTAssertEqual(try scene.receive(stream("c", bytes: 800)).0.status, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: scene.incoming + "/c")?.count, 800)
    }

    func testReceiversEntryQuotaCountsEverySource() throws {
        // Already there: work/, work/existing, other/, other/kept.
        let scene = try FilecopyScene(config: ["incoming_quota_files": "6"])
        var two = FilecopyStream()
        two.dir("d")
        two.file("d/1", "1")
        two.dirEnd("d")
        two.end()
        XCTAssertEqual(try scene.receive(two).0.status, 0)
        let r = try scene.receive(stream("one-more", bytes: 1))
        scene.assertRefused(r, code: EDQUOT)
        XCTAssertTrue(r.0.stderr.contains("QubesIncoming would hold more entries than incoming_quota_files allows"), r.0.stderr)
        // A new source's own directory would be the seventh entry.
        let other = try receive(scene, from: "third", stream("x", bytes: 1))
        XCTAssertEqual(other.1?.code, UInt32(EDQUOT), other.0.stderr)
    }

    /// Links never lead the count outside QubesIncoming, and a deep tree
    /// is walked without recursion and counted (and refused) cleanly.
    func testCountingFollowsNoLinkAndSurvivesADeepTree() throws {
        let scene = try FilecopyScene(config: ["incoming_quota_files": "1000"])
        let home = scene.h.home("personal")
        // A link to a big tree outside: counted as one link, not as its target.
        let outside = home + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        for i in 0..<20 { FileManager.default.createFile(atPath: outside + "/\(i)", contents: Data(count: 1 << 20)) }
        try FileManager.default.createSymbolicLink(atPath: home + "/QubesIncoming/other/link", withDestinationPath: outside)
        XCTAssertEqual(try scene.receive(stream("fine", bytes: 10)).0.status, 0)

        // 1200 levels, each directory holding the next: past
        // incoming_quota_files, so the walk stops there.
        XCTAssertEqual(mkdir(home + "/QubesIncoming/other/deep", 0o700), 0)
        var cur = open(home + "/QubesIncoming/other/deep", O_RDONLY | O_DIRECTORY)
        XCTAssertGreaterThanOrEqual(cur, 0)
        for _ in 0..<1200 {
            XCTAssertEqual(mkdirat(cur, "d", 0o700), 0)
            let next = openat(cur, "d", O_RDONLY | O_DIRECTORY)
            close(cur)
            cur = next
        }
        close(cur)
        let r = try scene.receive(stream("late", bytes: 10))
        XCTAssertEqual(r.1?.code, UInt32(EDQUOT), r.0.stderr)
        XCTAssertTrue(r.0.stderr.contains("incoming_quota_files"), r.0.stderr)
        // Removing the deep tree lets copies in again (rm walks it without recursion).
        let rm = Process()
        rm.executableURL = URL(fileURLWithPath: "/bin/rm")
        rm.arguments = ["-rf", "--", home + "/QubesIncoming/other/deep"]
        try rm.run()
        rm.waitUntilExit()
        XCTAssertEqual(rm.terminationStatus, 0)
        XCTAssertEqual(try scene.receive(stream("late", bytes: 10)).0.status, 0)
    }

    /// One source cannot hold more than max_concurrent_copies receivers
    /// open at once (each is a process and 4 MiB in the receiver); a slot
    /// comes back when its copy ends, and other sources have their own.
    func testConcurrentCopiesFromOneSourceAreCapped() throws {
        let scene = try FilecopyScene(config: ["max_concurrent_copies": "2"])
        var first = stream("held1", bytes: 100)
        first.bytes.removeLast(32)   // no end marker yet: the copy stays in progress
        let held = try (0..<2).map { _ in try scene.h.startService("qubes.Filecopy", source: "work", in: "personal") }
        held[0].write(first.bytes)
        // The receivers take their slots as they start: wait for both.
        let runDir = scene.h.root + "/run/odyssey-filecopy"
        for _ in 0..<1000 where ((try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []).count < 2 { usleep(10_000) }
        let r = try scene.receive(stream("third", bytes: 10))
        XCTAssertEqual(r.1?.code, UInt32(EBUSY), r.0.stderr)
        XCTAssertTrue(r.0.stderr.contains("2 copies from work are already running (max_concurrent_copies)"), r.0.stderr)
        XCTAssertFalse(scene.exists("third"))
        // Another source is not held up by work's copies.
        XCTAssertEqual(try receive(scene, from: "third", stream("other", bytes: 10)).0.status, 0)

        // The held copies end: their slots come back.
        var end = FilecopyStream()
        end.end()
        XCTAssertEqual(held[0].finish(end.bytes).status, 0)
        XCTAssertEqual(held[1].finish(end.bytes).status, 0)
        XCTAssertEqual(try scene.receive(stream("third", bytes: 10)).0.status, 0)
        XCTAssertTrue(scene.exists("held1"))
    }

    func testMinFreePercentKeepsTheFileSystemFromFilling() throws {
        // 100% kept free: nothing fits on any real file system.
        let full = try FilecopyScene(config: ["min_free_percent": "100"])
        let r = try full.receive(stream("f", bytes: 10))
        full.assertRefused(r, code: ENOSPC)
        XCTAssertTrue(r.0.stderr.contains("less free space than min_free_percent keeps"), r.0.stderr)
        // 0 turns the check off.
        let off = try FilecopyScene(config: ["min_free_percent": "0"])
        XCTAssertEqual(try off.receive(stream("f", bytes: 10)).0.status, 0)
    }
}

