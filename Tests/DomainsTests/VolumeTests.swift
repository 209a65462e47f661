import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

final class VolumeTests: XCTestCase {
    /// Store + volumes with a rootfs template `fedora` and AppVM `work`.
    func setUpDomains(warn: @escaping @Sendable (String) -> Void = { _ in }) throws -> (DomainStore, VolumeManager, String) {
        let dir = makeTempDir(self, "vol")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state", warn: warn)
        let rootfs = dir + "/rootfs"
        try FileOps.makeDirectories(rootfs + "/usr/bin")
        try FileOps.writeFile(rootfs + "/usr/bin/hello", "#!/bin/sh\necho hello\n", mode: 0o755)
        try TemplateBuilder(store: s, volumes: v).createFromRootfs("fedora", source: rootfs)
        try s.create("work", class: .appVM, label: "blue", template: "fedora")
        try v.createVolumes("work", klass: .appVM)
        return (s, v, dir)
    }

    func testStartPlansPerClass() throws {
        let (s, v, dir) = try setUpDomains()
        let state = dir + "/state"
        let app = try v.prepareStart("work", in: s.snapshot())
        XCTAssertEqual(app, StartPlan(rootDir: "\(state)/domains/fedora/root", rootMode: .snapshot,
                                      privateDir: "\(state)/domains/work/private", runDir: "\(state)/run/work"))
        XCTAssertEqual(app.volume(.root), PlannedVolume(role: .root, form: .tree, snapshot: true, path: "\(state)/domains/fedora/root"))
        let tpl = try v.prepareStart("fedora", in: s.snapshot())
        XCTAssertEqual(tpl.rootMode, .persistent, "a rootfs template's root persists")
        XCTAssertEqual(tpl.rootDir, "\(state)/domains/fedora/root")
        // A StandaloneVM cloned from the template owns a copy.
        try s.create("solo", class: .standaloneVM, label: "red")
        try v.createVolumes("solo", klass: .standaloneVM, cloneRootFrom: "fedora")
        let solo = try v.prepareStart("solo", in: s.snapshot())
        XCTAssertEqual(solo.rootMode, .persistent)
        XCTAssertEqual(try FileOps.readFile(solo.rootDir + "/usr/bin/hello"), "#!/bin/sh\necho hello\n")
        assertDomainError("QubesValueError") { try v.prepareStart("dom0", in: s.snapshot()) }
    }

    func testAppVMRootDiscardedPrivateKept() throws {
        let (s, v, _) = try setUpDomains()
        let plan = try v.prepareStart("work", in: s.snapshot())
        // What the plugin would do: upper in run_dir, private bind-mounted.
        try FileOps.makeDirectories(plan.runDir + "/upper/etc")
        try FileOps.writeFile(plan.runDir + "/upper/etc/changed", "x")
        try FileOps.makeDirectories(plan.privateDir! + "/home/user")
        try FileOps.writeFile(plan.privateDir! + "/home/user/notes", "keep me")
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertFalse(FileOps.exists(plan.runDir), "root changes (the upper) are discarded at stop")
        XCTAssertFalse(FileOps.exists(plan.rootDir + "/etc/changed"), "the template root is never written")
        let again = try v.prepareStart("work", in: s.snapshot())
        XCTAssertEqual(try FileOps.readFile(again.privateDir! + "/home/user/notes"), "keep me")
    }

    func testCrashBetweenStartAndStopIsRecoveredAtNextStart() throws {
        let (s, v, _) = try setUpDomains()
        let plan = try v.prepareStart("work", in: s.snapshot())
        try FileOps.makeDirectories(plan.privateDir!)
        try FileOps.writeFile(plan.privateDir! + "/f", "session 1")
        try FileOps.makeDirectories(plan.runDir + "/upper/tmp")
        try FileOps.writeFile(plan.runDir + "/upper/tmp/junk", "left by a crash")
        // No cleanupAfterStop: the daemon died. Next start:
        let again = try v.prepareStart("work", in: s.snapshot())
        XCTAssertFalse(FileOps.exists(again.runDir + "/upper/tmp/junk"), "leftover run dir removed")
        XCTAssertEqual(try FileOps.readFile(again.privateDir! + "/f"), "session 1")
        XCTAssertTrue(FileOps.isDirectory(v.baseDir("work")), "the missed stop was processed")
    }

    /// Issue 11 (red team): a path longer than PATH_MAX in the private volume
    /// (deep directories, or long names a file copy brought in) made the
    /// revision copy (`cp -a`) fail at every stop and so every start: the
    /// domain could never run again. Now the revision is skipped and said.
    func testAPrivateVolumeThatCannotBeCopiedStillStopsAndStarts() throws {
        let warnings = WarningBox()
        let (s, v, _) = try setUpDomains(warn: { warnings.add($0) })
        let p = try v.prepareStart("work", in: s.snapshot())
        try FileOps.writeFile(p.privateDir! + "/data", "kept")
        // 25 levels of 200-byte names: a 5,025-byte relative path, made the
        // way a domain makes it (one name at a time).
        var fd = open(p.privateDir!, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let long = String(repeating: "n", count: 200)
        for _ in 0..<25 {
            XCTAssertEqual(mkdirat(fd, long, 0o755), 0)
            let sub = openat(fd, long, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            close(fd)
            fd = sub
        }
        close(fd)
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertFalse(FileOps.exists(v.runningMarker("work")), "the stop was processed")
        XCTAssertTrue(warnings.lines.contains { $0.contains("work") && $0.contains("could not be copied") }, "\(warnings.lines)")
        let again = try v.prepareStart("work", in: s.snapshot())
        XCTAssertEqual(try FileOps.readFile(again.privateDir! + "/data"), "kept")
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertEqual(try v.revisions(of: "work"), [], "no base, so no revision")
    }

    func testRevisionsAndRevert() throws {
        let (s, v, _) = try setUpDomains()
        func session(_ content: String) throws {
            let p = try v.prepareStart("work", in: s.snapshot())
            try FileOps.makeDirectories(p.privateDir!)
            try FileOps.writeFile(p.privateDir! + "/data", content)
            try v.cleanupAfterStop("work", in: s.snapshot())
        }
        try session("v1")
        XCTAssertEqual(try v.revisions(of: "work"), [], "the first stop has no earlier state to keep")
        try session("v2")
        let r1 = try v.revisions(of: "work")
        XCTAssertEqual(r1.count, 1)
        XCTAssertEqual(try FileOps.readFile("\(v.revisionsDir("work"))/\(r1[0])/data"), "v1", "a revision is the state the session started from")
        try session("v3")
        XCTAssertEqual(try v.revisions(of: "work").count, 1, "revisions_to_keep=1")
        assertDomainError("QubesVMNotHaltedError") { try v.revert("work", isRunning: true, in: s.snapshot()) }
        try v.revert("work", isRunning: false, in: s.snapshot())
        try v.openPrivate("work")       // a halted domain's private volume is not mounted
        XCTAssertEqual(try FileOps.readFile(v.privateDir("work") + "/data"), "v2", "revert undoes the last session")
        try v.closePrivate("work")
        XCTAssertEqual(try v.revisions(of: "work"), [])
        assertDomainError("QubesValueError", "no revisions") { try v.revert("work", isRunning: false, in: s.snapshot()) }
        // More revisions, choose one by id.
        try s.setRevisionsToKeep(volume: "private", of: "work", to: 3)
        for c in ["a", "b", "c", "d", "e"] { try session(c) }
        let revs = try v.revisions(of: "work")
        XCTAssertEqual(revs.count, 3)
        XCTAssertEqual(revs, revs.sorted())
        try v.revert("work", to: revs[0], isRunning: false, in: s.snapshot())
        try v.openPrivate("work")
        XCTAssertEqual(try FileOps.readFile(v.privateDir("work") + "/data"), "b")
        try v.closePrivate("work")
        assertDomainError("QubesValueError", "no revision 'nope'") { try v.revert("work", to: "nope", isRunning: false, in: s.snapshot()) }
        // A revert interrupted after its first rename is undone at the next operation.
        // (The private volume is a mount point now: a revert replaces its
        // content under a marker; a crash leaves the marker, finished later.)
        try FileOps.writeFile(v.revertMarker("work"), revs[0])
        _ = try v.prepareStart("work", in: s.snapshot())
        XCTAssertEqual(try FileOps.readFile(v.privateDir("work") + "/data"), "b")
        let info = try v.info("private", of: "work", in: s.snapshot())
        XCTAssertTrue(info.saveOnStop)
        XCTAssertEqual(info.revisionsToKeep, 3)
        XCTAssertTrue(info.qubesInfo.contains("revisions_to_keep=3\n"))
        XCTAssertEqual(try v.volumeNames(of: "work", in: s.snapshot()), ["private", "root", "volatile"])
        let root = try v.info("root", of: "work", in: s.snapshot())
        XCTAssertEqual(root.source, "fedora:root")
        XCTAssertTrue(root.snapOnStart)
    }

    func testDisposablePrivateIsASnapshot() throws {
        let (s, v, _) = try setUpDomains()
        try s.setProperty("template_for_dispvms", of: "work", to: "True")
        try v.openPrivate("work")
        try FileOps.makeDirectories(v.privateDir("work"))
        try FileOps.writeFile(v.privateDir("work") + "/profile", "from the dvm template")
        let d = try s.createDisposable(from: "work")
        let plan = try v.prepareStart(d.name, in: s.snapshot())
        XCTAssertEqual(plan.rootDir, v.rootDir("fedora"))
        XCTAssertEqual(plan.rootMode, .snapshot)
        XCTAssertEqual(try FileOps.readFile(plan.privateDir! + "/profile"), "from the dvm template")
        try FileOps.writeFile(plan.privateDir! + "/profile", "changed in the disposable")
        try v.cleanupAfterStop(d.name, in: s.snapshot())
        XCTAssertFalse(FileOps.exists(plan.privateDir!))
        XCTAssertEqual(try FileOps.readFile(v.privateDir("work") + "/profile"), "from the dvm template")
        XCTAssertEqual(try v.revisions(of: d.name), [])
    }

    func testEmptyRootAndNoRevisions() throws {
        let (s, v, _) = try setUpDomains()
        try s.create("bare", class: .templateVM, label: "red")
        assertDomainError("StoragePoolException", "missing or empty") { try v.prepareStart("bare", in: s.snapshot()) }
        try s.create("on-bare", class: .appVM, label: "red", template: "bare")
        assertDomainError("StoragePoolException", "(template 'bare')") { try v.prepareStart("on-bare", in: s.snapshot()) }
        // revisions_to_keep=0: no revisions and no base copy at all.
        try s.setRevisionsToKeep(volume: "private", of: "work", to: 0)
        for c in ["a", "b"] {
            let p = try v.prepareStart("work", in: s.snapshot())
            try FileOps.makeDirectories(p.privateDir!)
            try FileOps.writeFile(p.privateDir! + "/data", c)
            try v.cleanupAfterStop("work", in: s.snapshot())
        }
        XCTAssertEqual(try v.revisions(of: "work"), [])
        XCTAssertFalse(FileOps.exists(v.baseDir("work")))
        try v.openPrivate("work")
        XCTAssertEqual(try FileOps.readFile(v.privateDir("work") + "/data"), "b")
    }

    func testRemoveAndRecover() throws {
        let (s, v, dir) = try setUpDomains()
        try FileOps.makeDirectories(dir + "/state/staging/half-built.123/root/usr")
        try FileOps.makeDirectories(dir + "/state/domains/ghost/private")
        let removed = try v.recover(knownDomains: Set(s.snapshot().domainNames))
        XCTAssertEqual(removed.sorted(), ["domains/ghost", "staging/half-built.123"])
        XCTAssertTrue(FileOps.isDirectory(v.domainDir("work")))
        try v.removeVolumes("work")
        XCTAssertFalse(FileOps.exists(v.domainDir("work")))
    }

    func testRemoveTreeNeverCrossesAMount() throws {
        try XCTSkipIf(getuid() != 0, "needs root to mount")
        let dir = makeTempDir(self, "mnt")
        let m = dir + "/run/upper/mnt"
        try FileOps.makeDirectories(m)
        guard mount("tmpfs", m, "tmpfs", 0, nil) == 0 else { throw XCTSkip("cannot mount tmpfs here") }
        defer { umount2(m, Int32(MNT_DETACH)) }
        try FileOps.writeFile(m + "/precious", "x")
        assertDomainError("StoragePoolException", "still mounted") { try FileOps.removeTree(dir + "/run") }
        XCTAssertEqual(try FileOps.readFile(m + "/precious"), "x")
    }
}

final class WarningBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func add(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}
