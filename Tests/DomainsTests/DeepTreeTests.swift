import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, finding 2: a domain's deep directory tree crashed odysseyd
/// (recursive removal out of stack), also at every start during recovery.
final class DeepTreeTests: XCTestCase {
    /// A chain of `depth` nested directories below `top` built as a domain
    /// would (relative mkdirs, so no path is ever longer than one name), with
    /// a file, a symlink out of the tree and a non-UTF-8 name along the way.
    func buildDeepTree(_ top: String, depth: Int, outside: String) throws {
        try FileOps.makeDirectories(top)
        var fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        for level in 0..<depth {
            let name = level % 1000 == 7 ? "d\u{00e9}" : "d"
            if level % 1000 == 3 {
                XCTAssertEqual(symlinkat(outside, fd, "escape"), 0, "symlink at level \(level)")
                let f = openat(fd, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                XCTAssertGreaterThanOrEqual(f, 0)
                close(f)
                // A name that is not UTF-8 (0xff) must be removed too, not skipped.
                let raw: [CChar] = [0x78, -1, 0]
                XCTAssertEqual(mkdirat(fd, raw, 0o755), 0)
            }
            XCTAssertEqual(mkdirat(fd, name, 0o755), 0, "mkdir at level \(level): \(errno)")
            let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            XCTAssertGreaterThanOrEqual(sub, 0)
            close(fd)
            fd = sub
        }
        close(fd)
    }

    /// Runs `body` on a thread with a small stack (what a daemon worker has),
    /// so a recursion per level fails at a depth a test can build quickly.
    func onSmallStack(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 256 * 1024)
        var t = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        XCTAssertEqual(pthread_create(&t, &attr, { p in
            Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
            return nil
        }, arg), 0)
        pthread_join(t, nil)
        pthread_attr_destroy(&attr)
    }

    func testRemoveTreeOfTwelveThousandLevelsOnASmallStack() throws {
        let dir = makeTempDir(self, "deep")
        let outside = dir + "/outside"
        try FileOps.makeDirectories(outside)
        try FileOps.writeFile(outside + "/precious", "x")
        try buildDeepTree(dir + "/tree", depth: 12_000, outside: outside)
        let result = Shared<String?>("not run")
        onSmallStack {
            do { try FileOps.removeTree(dir + "/tree"); result.set(nil) } catch { result.set("\(error)") }
        }
        XCTAssertNil(result.get(), "removal of a 12,000-level tree failed")
        XCTAssertFalse(FileOps.exists(dir + "/tree"))
        XCTAssertEqual(try FileOps.readFile(outside + "/precious"), "x", "a symlink in the tree is never followed")
        // The walk of a volume's usage must not recurse either.
        try buildDeepTree(dir + "/tree2", depth: 12_000, outside: outside)
        let usage = Shared<Int64>(0)
        onSmallStack { usage.set(FileOps.diskUsage(dir + "/tree2")) }
        XCTAssertGreaterThan(usage.get(), 0)
    }

    func testRemoveTreeKeepsAtMostTwoDescriptorsOpen() throws {
        let dir = makeTempDir(self, "deep")
        try buildDeepTree(dir + "/tree", depth: 3_000, outside: "/nonexistent")
        // Under __rlimit_resource_t(RLIMIT_NOFILE.rawValue) 64, one fd per level would fail at once.
        var old = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &old)
        var low = old
        low.rlim_cur = UInt(openDescriptors() + 8)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &low), 0)
        defer { _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &old) }
        XCTAssertNoThrow(try FileOps.removeTree(dir + "/tree"))
        XCTAssertFalse(FileOps.exists(dir + "/tree"))
    }

    /// A disposable's home 12,000 levels deep at stop, then the daemon
    /// "crashed" mid-removal (the tree left in staging/): recovery removes it,
    /// and a leftover it cannot remove is reported, not thrown.
    func testRecoveryRemovesDeepLeftoversAndNeverThrowsOnThem() throws {
        try XCTSkipIf(getuid() != 0, "needs root to mount")
        let dir = makeTempDir(self, "deep")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state")
        try buildDeepTree(dir + "/state/staging/disp1234.removed/private.snapshot/home/user",
                          depth: 12_000, outside: dir)
        try buildDeepTree(dir + "/state/domains/ghost/private", depth: 10_000, outside: dir)
        // A stale mount in a leftover (a crashed domain's volume) is unmounted, then removed.
        let stale = dir + "/state/staging/mounted.removed/private"
        try FileOps.makeDirectories(stale)
        guard mount("tmpfs", stale, "tmpfs", 0, nil) == 0 else { throw XCTSkip("cannot mount tmpfs here") }
        defer { umount2(stale, Int32(MNT_DETACH)) }
        // A leftover that cannot be removed: an immutable file in it.
        let stuck = dir + "/state/staging/stuck.removed"
        try FileOps.makeDirectories(stuck)
        try FileOps.writeFile(stuck + "/immutable", "x")
        guard (try? Spawn.run(["chattr", "+i", stuck + "/immutable"])) != nil else { throw XCTSkip("no chattr +i here") }
        defer { _ = try? Spawn.run(["chattr", "-i", stuck + "/immutable"]) }
        let failures = Shared<[String]>([])
        let removed = Shared<[String]>([])
        let thrown = Shared<String?>(nil)
        let known = Set(s.snapshot().domainNames)
        onSmallStack {
            do {
                removed.set(try v.recover(knownDomains: known, failed: { m in failures.set(failures.get() + [m]) }))
            } catch { thrown.set("\(error)") }
        }
        XCTAssertNil(thrown.get(), "recovery must not fail on what a domain left")
        XCTAssertEqual(removed.get().sorted(), ["domains/ghost", "staging/disp1234.removed", "staging/mounted.removed"])
        XCTAssertEqual(failures.get().count, 1)
        XCTAssertTrue(failures.get().first?.contains("staging/stuck.removed") ?? false, "\(failures.get())")
        XCTAssertFalse(FileOps.exists(dir + "/state/staging/disp1234.removed"))
        XCTAssertFalse(FileOps.exists(dir + "/state/domains/ghost"))
        XCTAssertEqual(FileOps.mountPoints(under: dir + "/state"), [], "no stale mount left")
        XCTAssertTrue(FileOps.exists(stuck + "/immutable"), "what cannot be removed is kept for the next start")
    }

    private func openDescriptors() -> Int {
        (try? FileOps.list("/proc/self/fd").count) ?? 16
    }
}

/// A value shared with a test thread.
final class Shared<T>: @unchecked Sendable {
    private let lock = NSLockLite()
    private var value: T
    init(_ v: T) { value = v }
    func get() -> T { lock.locked { value } }
    func set(_ v: T) { lock.locked { value = v } }
}
