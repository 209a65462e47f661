import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, finding 5: volumes have an enforced size. Real images, real
/// loop devices and mounts (root only). Sizes are small so the tests fill
/// them quickly; the mechanism is the same at Qubes' 2 GiB.
final class DiskLimitTests: XCTestCase {
    let small: Int64 = 64 << 20

    func setUpDomains() throws -> (DomainStore, VolumeManager, String) {
        try XCTSkipIf(getuid() != 0, "needs root for loop devices and mounts")
        let dir = makeTempDir(self, "disk")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state", defaultPrivateSize: small)
        try FileOps.makeDirectories(dir + "/rootfs/usr/bin")
        try FileOps.writeFile(dir + "/rootfs/usr/bin/hello", "hi")
        try TemplateBuilder(store: s, volumes: v).createFromRootfs("fedora", source: dir + "/rootfs")
        try s.create("work", class: .appVM, label: "blue", template: "fedora")
        try v.createVolumes("work", klass: .appVM)
        return (s, v, dir)
    }

    /// Writes 1 MiB chunks to `path` until the write fails; returns (bytes written, errno).
    func fill(_ path: String, limit: Int64) -> (Int64, Int32) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return (0, errno) }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
        var total: Int64 = 0
        while total < limit {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            if n < 0 { return (total, errno) }
            total += Int64(n)
        }
        return (total, fsync(fd) == 0 ? 0 : errno)
    }

    func testAFullPrivateVolumeFailsWritesThereOnly() throws {
        let (s, v, dir) = try setUpDomains()
        let plan = try v.prepareStart("work", in: s.snapshot())
        XCTAssertNotNil(LoopDevice.mountedDevice(at: plan.privateDir!), "the private volume is a mounted image while it runs")
        let (written, err) = fill(plan.privateDir! + "/big", limit: 1 << 30)
        XCTAssertEqual(err, ENOSPC, "a full volume fails with ENOSPC")
        XCTAssertLessThanOrEqual(written, small)
        XCTAssertGreaterThan(written, small / 2)
        // The host's file system is untouched by it: a write beside the volume works.
        XCTAssertNoThrow(try FileOps.writeFile(dir + "/beside", "still room"))
        XCTAssertLessThanOrEqual(VolumeImage.allocated(v.privateImage("work")), small, "the image never holds more than its size")
        let info = try v.info("private", of: "work", in: s.snapshot())
        XCTAssertEqual(info.size, small)
        XCTAssertTrue(info.qubesInfo.contains("size=\(small)\n"), info.qubesInfo)
        XCTAssertGreaterThan(info.usage, small / 2)
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertNil(LoopDevice.mountedDevice(at: v.privateDir("work")), "a halted domain holds no mount")
        XCTAssertNil(LoopDevice.existingDevice(for: v.privateImage("work")), "nor a loop device")
    }

    func testResizeGrowsOnlineAndOfflineAndNeverShrinks() throws {
        let (s, v, _) = try setUpDomains()
        let plan = try v.prepareStart("work", in: s.snapshot())
        try v.resize("private", of: "work", to: 128 << 20, in: s.snapshot())           // while it runs
        XCTAssertEqual(VolumeImage.size(v.privateImage("work")), 128 << 20)
        if VolumeManager.fileSystemUsage(plan.privateDir!)!.0 < 100 << 20 {
            // Online growth needs CAP_SYS_RESOURCE (not given to this host's root): it applies at the next start.
            try v.cleanupAfterStop("work", in: s.snapshot())
            _ = try v.prepareStart("work", in: s.snapshot())
        }
        XCTAssertGreaterThan(VolumeManager.fileSystemUsage(plan.privateDir!)!.0, 100 << 20, "the file system grew")
        let (written, err) = fill(plan.privateDir! + "/big", limit: 96 << 20)
        XCTAssertEqual(err, 0, "room after growing")
        XCTAssertEqual(written, 96 << 20)
        try v.cleanupAfterStop("work", in: s.snapshot())
        try v.resize("private", of: "work", to: 192 << 20, in: s.snapshot())           // halted
        try v.openPrivate("work")
        XCTAssertGreaterThan(VolumeManager.fileSystemUsage(v.privateDir("work"))!.0, 160 << 20)
        XCTAssertEqual(try FileOps.lstatOf(v.privateDir("work") + "/big")?.st_size, 96 << 20, "content kept")
        try v.closePrivate("work")
        assertDomainError("StoragePoolException", "shrinking") { try v.resize("private", of: "work", to: 64 << 20, in: s.snapshot()) }
        assertDomainError("QubesValueError", "multiple of 1 MiB") { try v.resize("private", of: "work", to: (200 << 20) + 1, in: s.snapshot()) }
        assertDomainError("QubesValueError", "between") { try v.resize("private", of: "work", to: 1 << 50, in: s.snapshot()) }
        assertDomainError("QubesValueError", "cannot be changed") { try v.resize("root", of: "work", to: 1 << 30, in: s.snapshot()) }
        XCTAssertEqual(VolumeImage.size(v.privateImage("work")), 192 << 20)
    }

    /// A private volume made before images (a plain directory) keeps its
    /// content, owners and links, and becomes an image at its first start.
    func testPlainDirectoryPrivateIsMigrated() throws {
        let (s, v, _) = try setUpDomains()
        try s.create("old", class: .appVM, label: "red", template: "fedora")
        let priv = v.privateDir("old")
        try FileOps.makeDirectories(priv + "/home/user")
        try FileOps.writeFile(priv + "/home/user/notes", "kept")
        XCTAssertEqual(chown(priv + "/home/user/notes", 100_1000, 100_1000), 0)
        XCTAssertEqual(symlink("notes", priv + "/home/user/link"), 0)
        XCTAssertFalse(FileOps.exists(v.privateImage("old")))
        let plan = try v.prepareStart("old", in: s.snapshot())
        XCTAssertTrue(FileOps.exists(v.privateImage("old")))
        XCTAssertNotNil(LoopDevice.mountedDevice(at: plan.privateDir!))
        XCTAssertEqual(try FileOps.readFile(plan.privateDir! + "/home/user/link"), "kept")
        XCTAssertEqual(FileOps.lstatOf(plan.privateDir! + "/home/user/notes")?.st_uid, 100_1000)
        try v.cleanupAfterStop("old", in: s.snapshot())
        XCTAssertEqual(try FileOps.list(priv), [], "nothing left in the mount point once halted")
        let again = try v.prepareStart("old", in: s.snapshot())
        XCTAssertEqual(try FileOps.readFile(again.privateDir! + "/home/user/notes"), "kept")
    }

    /// A disposable's private is a tmpfs of its template's size: bounded, and
    /// discarded by an unmount.
    func testDisposablePrivateIsBoundedAndDiscarded() throws {
        let (s, v, _) = try setUpDomains()
        try s.setProperty("template_for_dispvms", of: "work", to: "True")
        try v.withPrivateOpen("work") { () throws(DomainError) in try FileOps.writeFile(v.privateDir("work") + "/profile", "p") }
        let d = try s.createDisposable(from: "work")
        let plan = try v.prepareStart(d.name, in: s.snapshot())
        XCTAssertEqual(try FileOps.readFile(plan.privateDir! + "/profile"), "p")
        XCTAssertEqual(fill(plan.privateDir! + "/big", limit: 1 << 30).1, ENOSPC)
        XCTAssertNil(LoopDevice.mountedDevice(at: v.privateDir("work")), "the template's volume was closed after the copy")
        try v.cleanupAfterStop(d.name, in: s.snapshot())
        XCTAssertFalse(FileOps.exists(plan.privateDir!))
        assertDomainError("QubesValueError", "snapshot") { try v.resize("private", of: d.name, to: 1 << 30, in: s.snapshot()) }
    }

    /// What the mechanism adds to a start and a stop (printed, not asserted:
    /// a unit test must not depend on speed).
    func testCostsMeasured() throws {
        let (s, v, dir) = try setUpDomains()
        func ms(_ body: () throws -> Void) rethrows -> Double {
            let t0 = TemplateBuilder.now(); try body(); return (TemplateBuilder.now() - t0) * 1000
        }
        var open: [Double] = [], close: [Double] = []
        for _ in 0..<5 {
            open.append(try ms { try v.openPrivate("work") })
            close.append(try ms { try v.closePrivate("work") })
        }
        let make = try ms { try VolumeImage.create(dir + "/two-gib.img", bytes: VolumeImage.defaultPrivateSize) }
        XCTAssertLessThan(VolumeImage.allocated(dir + "/two-gib.img"), 8 << 20, "a new 2 GiB image is sparse")
        // Two sessions that each rewrite 40 MiB: what the host's disk holds
        // (the image, the base the next revision comes from, one revision).
        for session in 0..<2 {
            let p = try v.prepareStart("work", in: s.snapshot())
            XCTAssertEqual(fill(p.privateDir! + "/data", limit: 40 << 20).1, 0, "session \(session)")
            try v.cleanupAfterStop("work", in: s.snapshot())
        }
        let image = VolumeImage.allocated(v.privateImage("work")), domainDir = FileOps.diskUsage(v.domainDir("work"))
        XCTAssertLessThanOrEqual(domainDir, 3 * small + (4 << 20), "image + base + one revision, each at most the volume's size")
        print("disk limits: after two sessions writing 40 MiB each: image \(image >> 20) MiB allocated,"
              + " domain dir \(domainDir >> 20) MiB (image + base + 1 revision)")
        print("disk limits: mount (LOOP_CONFIGURE + mount) median \(open.sorted()[2]) ms, unmount \(close.sorted()[2]) ms,"
              + " mke2fs of a sparse 2 GiB image \(make) ms")
        _ = s
    }
}
