import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// Issue 12: the image form of a start (volumes a VM boots). Real mke2fs,
/// real debugfs and e2fsck, real loop devices: where a test plays the VM, it
/// loop-mounts the image and writes files, which is what a guest's writes to
/// its block device leave in the file.
final class ImageVolumeTests: XCTestCase {
    let small: Int64 = 64 << 20

    /// Store + volumes: rootfs template `fedora` (a file, a symlink, a
    /// private directory), AppVM `work`.
    func setUpDomains(progress: WarningBox? = nil) throws -> (DomainStore, VolumeManager, String) {
        try XCTSkipIf(getuid() != 0, "needs root for loop devices and mounts")
        try XCTSkipIf(Spawn.resolve("debugfs") == nil || Spawn.resolve("mke2fs") == nil, "needs e2fsprogs (mke2fs, debugfs)")
        let dir = makeTempDir(self, "img")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state", defaultPrivateSize: small,
                                  progress: { m in progress?.add(m) })
        let rootfs = dir + "/rootfs"
        try FileOps.makeDirectories(rootfs + "/usr/bin")
        try FileOps.makeDirectories(rootfs + "/root", mode: 0o700)
        try FileOps.writeFile(rootfs + "/usr/bin/hello", "#!/bin/sh\necho hello\n", mode: 0o755)
        XCTAssertEqual(symlink("usr/bin", rootfs + "/bin"), 0)
        try TemplateBuilder(store: s, volumes: v).createFromRootfs("fedora", source: rootfs)
        try s.create("work", class: .appVM, label: "blue", template: "fedora")
        try v.createVolumes("work", klass: .appVM)
        return (s, v, dir)
    }

    func debugfs(_ image: String, _ request: String) throws -> String {
        try Spawn.run(["debugfs", "-R", request, "--", image]).stdout
    }

    /// Plays the VM: writes `content` at `path` inside the ext4 image.
    func guestWrite(_ image: String, _ path: String, _ content: String, scratch: String) throws {
        try FileOps.makeDirectories(scratch)
        try LoopDevice.mount(image, at: scratch)
        defer { try? LoopDevice.unmount(scratch) }
        let full = scratch + "/" + path
        try FileOps.makeDirectories(VolumeManager.parentDir(full))
        try FileOps.writeFile(full, content)
    }

    func inode(_ path: String) -> UInt64 { FileOps.lstatOf(path).map { UInt64($0.st_ino) } ?? 0 }

    func testRootImageHoldsTheTreeAndIsASparseBareFileSystem() throws {
        let msgs = WarningBox()
        let (_, v, _) = try setUpDomains(progress: msgs)
        let image = try v.ensureRootImage("fedora")
        XCTAssertEqual(image, v.domainDir("fedora") + "/root.img")
        XCTAssertEqual(try debugfs(image, "cat /usr/bin/hello"), "#!/bin/sh\necho hello\n")
        let listing = try debugfs(image, "ls -l /")
        XCTAssertTrue(listing.contains(" bin"), listing)
        XCTAssertTrue(try debugfs(image, "stat /bin").contains("Fast link dest: \"usr/bin\""), "symlinks stay symlinks")
        XCTAssertTrue(try debugfs(image, "stat /root").contains("Mode:  0700"), "modes are kept")
        XCTAssertTrue(try debugfs(image, "stat /usr/bin/hello").contains("Mode:  0755"))
        let size = try XCTUnwrap(VolumeImage.size(image))
        XCTAssertEqual(size, VolumeImage.defaultRootSize, "a fixed sparse 10 GiB")
        XCTAssertEqual(VolumeImage.fileSystemBytes(image), size, "no partition table: the file system is the whole file")
        XCTAssertLessThan(VolumeImage.allocated(image), 256 << 20, "sparse: the host holds what the tree holds")
        XCTAssertTrue(msgs.lines.contains { $0.contains("building its root image") }, "\(msgs.lines)")
        XCTAssertFalse(FileOps.exists(v.domainDir("fedora") + "/.root.img.tmp"))
    }

    func testRootImageRebuiltWhenTheTemplateChangesAndNotOtherwise() throws {
        let msgs = WarningBox()
        let (s, v, _) = try setUpDomains(progress: msgs)
        let first = try v.prepareStart("work", in: s.snapshot(), form: .image)
        let image = v.rootImage("fedora")
        XCTAssertEqual(first.rootDir, image)
        let built = inode(image)
        try v.cleanupAfterStop("work", in: s.snapshot())
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertEqual(inode(image), built, "an unchanged template is not rebuilt")
        XCTAssertEqual(msgs.lines.filter { $0.contains("building") }.count, 1)
        // The template runs natively and changes its root: its children's next image start rebuilds.
        let tpl = try v.prepareStart("fedora", in: s.snapshot())
        XCTAssertEqual(tpl.rootMode, .persistent)
        try FileOps.writeFile(tpl.rootDir + "/usr/bin/new-tool", "installed by apt")
        try v.cleanupAfterStop("fedora", in: s.snapshot())
        XCTAssertFalse(v.rootImageIsCurrent("fedora"))
        // Not rebuilt from a tree its template is changing right now.
        _ = try v.prepareStart("fedora", in: s.snapshot())
        assertDomainError("StoragePoolException", "running now, is changing") { try v.prepareStart("work", in: s.snapshot(), form: .image) }
        try v.cleanupAfterStop("fedora", in: s.snapshot())
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertNotEqual(inode(image), built, "rebuilt after the template changed")
        XCTAssertEqual(try debugfs(image, "cat /usr/bin/new-tool"), "installed by apt")
        XCTAssertEqual(msgs.lines.filter { $0.contains("building") }.count, 2)
    }

    func testImagePlansPerClass() throws {
        let (s, v, dir) = try setUpDomains()
        let state = dir + "/state"
        // AppVM: the template's image as a snapshot, its own private.img unmounted, a volatile scratch.
        let app = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertEqual(app.form, .image)
        XCTAssertEqual(app.volume(.root), PlannedVolume(role: .root, form: .image, snapshot: true,
                                                        path: "\(state)/domains/fedora/root.img", sizeMiB: 10240))
        XCTAssertEqual(app.volume(.private), PlannedVolume(role: .private, form: .image,
                                                           path: "\(state)/domains/work/private.img", sizeMiB: 64))
        XCTAssertEqual(app.volume(.volatile), PlannedVolume(role: .volatile, form: .none, path: "", sizeMiB: 1024))
        XCTAssertEqual(app.runDir, "\(state)/run/work")
        XCTAssertFalse(LoopDevice.isMountPoint(v.privateDir("work")), "the host does not mount a VM's private")
        XCTAssertNil(LoopDevice.existingDevice(for: v.privateImage("work")))
        XCTAssertEqual(v.runningForm("work"), .image)
        // While the VM holds it, every host-side open is refused.
        assertDomainError("StoragePoolException", "attached to its running VM") { try v.withPrivateOpen("work") {} }
        // TemplateVM: its own root image, written in place: not while it is a running child's snapshot base.
        assertDomainError("StoragePoolException", "snapshot base of running domains (work)") {
            try v.prepareStart("fedora", in: s.snapshot(), form: .image)
        }
        try v.cleanupAfterStop("work", in: s.snapshot())
        let tpl = try v.prepareStart("fedora", in: s.snapshot(), form: .image)
        XCTAssertEqual(tpl.volume(.root)?.snapshot, false)
        XCTAssertEqual(tpl.volume(.root)?.path, "\(state)/domains/fedora/root.img")
        XCTAssertEqual(tpl.rootMode, .persistent)
        assertDomainError("StoragePoolException", "runs as a VM and writes the root image") {
            try v.prepareStart("work", in: s.snapshot(), form: .image)
        }
        try v.cleanupAfterStop("fedora", in: s.snapshot())
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        // StandaloneVM: its own image, built from its own tree.
        try s.create("solo", class: .standaloneVM, label: "red")
        try v.createVolumes("solo", klass: .standaloneVM, cloneRootFrom: "fedora")
        let solo = try v.prepareStart("solo", in: s.snapshot(), form: .image)
        XCTAssertEqual(solo.volume(.root)?.path, "\(state)/domains/solo/root.img")
        XCTAssertEqual(solo.volume(.root)?.snapshot, false)
        XCTAssertEqual(try debugfs(solo.rootDir, "cat /usr/bin/hello"), "#!/bin/sh\necho hello\n")
        // A host-linked template is never written: a snapshot even as its own root.
        try FileOps.writeFile(v.domainDir("solo") + "/root.hostlinked", "")
        try v.cleanupAfterStop("solo", in: s.snapshot())
        XCTAssertEqual(try v.prepareStart("solo", in: s.snapshot(), form: .image).volume(.root)?.snapshot, true)
        // DispVM: the root snapshot of its template's template, the private a snapshot of the dvm template's.
        try v.cleanupAfterStop("work", in: s.snapshot())
        try s.setProperty("template_for_dispvms", of: "work", to: "True")
        let d = try s.createDisposable(from: "work")
        let disp = try v.prepareStart(d.name, in: s.snapshot(), form: .image)
        XCTAssertEqual(disp.volume(.root)?.path, "\(state)/domains/fedora/root.img")
        XCTAssertEqual(disp.volume(.root)?.snapshot, true)
        XCTAssertEqual(disp.volume(.private), PlannedVolume(role: .private, form: .image, snapshot: true,
                                                            path: "\(state)/domains/work/private.dispvm.img", sizeMiB: 64))
        try v.cleanupAfterStop(d.name, in: s.snapshot())
        XCTAssertFalse(FileOps.exists(disp.runDir))
        // Info describes images for a domain started in the image form.
        let info = try v.info("private", of: "work", in: s.snapshot())
        XCTAssertEqual(info.path, "\(state)/domains/work/private.img")
        XCTAssertEqual(info.size, small)
        XCTAssertGreaterThan(info.usage, 0)
        let root = try v.info("root", of: "work", in: s.snapshot())
        XCTAssertEqual(root.path, "\(state)/domains/fedora/root.img")
        XCTAssertEqual(root.size, VolumeImage.defaultRootSize)
        XCTAssertTrue(root.snapOnStart)
        XCTAssertEqual(try v.info("root", of: "work", in: s.snapshot(), form: .tree).path, "\(state)/domains/fedora/root")
    }

    func testImageFormPrivateRevisionsRevertResizeAndProviderSwitch() throws {
        let (s, v, dir) = try setUpDomains()
        let scratch = dir + "/guest"
        func vmSession(_ content: String) throws {
            let p = try v.prepareStart("work", in: s.snapshot(), form: .image)
            try guestWrite(try XCTUnwrap(p.privateDir), "home/user/data", content, scratch: scratch)
            try v.cleanupAfterStop("work", in: s.snapshot())
            XCTAssertFalse(LoopDevice.isMountPoint(v.privateDir("work")), "closed again after the stop's revision")
        }
        try vmSession("v1")
        XCTAssertEqual(try v.revisions(of: "work"), [])
        try vmSession("v2")
        let revs = try v.revisions(of: "work")
        XCTAssertEqual(revs.count, 1)
        XCTAssertEqual(try FileOps.readFile("\(v.revisionsDir("work"))/\(revs[0])/home/user/data"), "v1")
        try v.revert("work", isRunning: false, in: s.snapshot())
        XCTAssertEqual(try debugfs(v.privateImage("work"), "cat /home/user/data"), "v1", "revert undoes the VM's last session")
        // Resize while the VM holds the image: the file grows now, its file system at the next start.
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        try v.resize("private", of: "work", to: 96 << 20, in: s.snapshot())
        XCTAssertEqual(VolumeImage.size(v.privateImage("work")), 96 << 20)
        XCTAssertEqual(VolumeImage.fileSystemBytes(v.privateImage("work")), small, "not touched under a running VM")
        try v.cleanupAfterStop("work", in: s.snapshot())
        let p = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertEqual(p.volume(.private)?.sizeMiB, 96)
        XCTAssertEqual(VolumeImage.fileSystemBytes(v.privateImage("work")), 96 << 20)
        try v.cleanupAfterStop("work", in: s.snapshot())
        // Provider switch back to native: the same private.img, no rebuild.
        let tree = try v.prepareStart("work", in: s.snapshot(), form: .tree)
        XCTAssertEqual(try FileOps.readFile(tree.privateDir! + "/home/user/data"), "v1")
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertEqual(v.lastForm("work"), .tree)
        // What the image form costs on the start and stop paths (printed, not asserted).
        var startMs: [Int] = [], stopMs: [Int] = []
        for _ in 0..<5 {
            let t0 = TemplateBuilder.now()
            _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
            let t1 = TemplateBuilder.now()
            try v.cleanupAfterStop("work", in: s.snapshot())
            startMs.append(Int((t1 - t0) * 1e6)); stopMs.append(Int((TemplateBuilder.now() - t1) * 1e6))
        }
        print("image-form prepareStart us: \(startMs.sorted()), cleanupAfterStop us (e2fsck, mount, revision): \(stopMs.sorted())")
    }

    func testATemplateRunAsAVMUpdatesItsTreeForNativeChildren() throws {
        let msgs = WarningBox()
        let (s, v, dir) = try setUpDomains(progress: msgs)
        try s.create("other", class: .appVM, label: "red", template: "fedora")
        try v.createVolumes("other", klass: .appVM)
        let tpl = try v.prepareStart("fedora", in: s.snapshot(), form: .image)
        try guestWrite(tpl.rootDir, "etc/updated", "by apt in the VM", scratch: dir + "/guest")
        try v.cleanupAfterStop("fedora", in: s.snapshot())
        // A native domain still on the old tree (started before; here its marker says so): no swap under it.
        try FileOps.writeFile(v.runningMarker("other"), "")
        assertDomainError("StoragePoolException", "still run on the old tree (other)") { try v.prepareStart("work", in: s.snapshot()) }
        try v.cleanupAfterStop("other", in: s.snapshot())
        let built = inode(v.rootImage("fedora"))
        // A native child: the tree follows the image first.
        let child = try v.prepareStart("work", in: s.snapshot())
        XCTAssertEqual(child.rootDir, v.rootDir("fedora"))
        XCTAssertEqual(try FileOps.readFile(child.rootDir + "/etc/updated"), "by apt in the VM")
        XCTAssertEqual(try FileOps.readFile(child.rootDir + "/usr/bin/hello"), "#!/bin/sh\necho hello\n")
        XCTAssertFalse(FileOps.exists(child.rootDir + "/lost+found"))
        try v.cleanupAfterStop("work", in: s.snapshot())
        XCTAssertTrue(msgs.lines.contains { $0.contains("newer than its tree") })
        // And a VM child uses the image as it is: no rebuild.
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertEqual(inode(v.rootImage("fedora")), built)
        XCTAssertFalse(FileOps.exists(v.domainDir("fedora") + "/.root.new"))
    }

    func testDisposableSnapshotsThePublishedPrivateOfItsTemplate() throws {
        let (s, v, dir) = try setUpDomains()
        try s.setProperty("template_for_dispvms", of: "work", to: "True")
        try v.withPrivateOpen("work") { () throws(DomainError) in
            try FileOps.writeFile(v.privateDir("work") + "/profile", "from the dvm template")
        }
        let d1 = try s.createDisposable(from: "work")
        let p1 = try v.prepareStart(d1.name, in: s.snapshot(), form: .image)
        let published = try XCTUnwrap(p1.privateDir)
        XCTAssertEqual(try debugfs(published, "cat /profile"), "from the dvm template")
        let copied = inode(published)
        let d2 = try s.createDisposable(from: "work")
        _ = try v.prepareStart(d2.name, in: s.snapshot(), form: .image)
        XCTAssertEqual(inode(published), copied, "an unchanged template's private is not copied again")
        // The dvm template runs as a VM: disposables start from its last stop's copy.
        try guestWrite(v.privateImage("work"), "profile", "changed after publishing", scratch: dir + "/g0")
        _ = try v.prepareStart("work", in: s.snapshot(), form: .image)
        let d3 = try s.createDisposable(from: "work")
        XCTAssertEqual(try v.prepareStart(d3.name, in: s.snapshot(), form: .image).privateDir, published)
        XCTAssertEqual(inode(published), copied)
        try v.cleanupAfterStop("work", in: s.snapshot())
        // Halted again and changed: the next disposable gets a fresh copy.
        let d4 = try s.createDisposable(from: "work")
        _ = try v.prepareStart(d4.name, in: s.snapshot(), form: .image)
        XCTAssertEqual(try debugfs(published, "cat /profile"), "changed after publishing")
        // The dvm template runs natively: the copy is made from its files.
        try v.withPrivateOpen("work") { () throws(DomainError) in
            try FileOps.writeFile(v.privateDir("work") + "/profile", "live native")
        }
        _ = try v.prepareStart("work", in: s.snapshot())
        let d5 = try s.createDisposable(from: "work")
        _ = try v.prepareStart(d5.name, in: s.snapshot(), form: .image)
        XCTAssertEqual(try debugfs(published, "cat /profile"), "live native")
        try v.cleanupAfterStop("work", in: s.snapshot())
        // A dvm template running as a VM that never published: a clear refusal.
        try s.create("fresh", class: .appVM, label: "red", template: "fedora")
        try v.createVolumes("fresh", klass: .appVM)
        try s.setProperty("template_for_dispvms", of: "fresh", to: "True")
        _ = try v.prepareStart("fresh", in: s.snapshot(), form: .image)
        let d6 = try s.createDisposable(from: "fresh")
        assertDomainError("StoragePoolException", "stop fresh once") { try v.prepareStart(d6.name, in: s.snapshot(), form: .image) }
    }

    func testCrashLeftoversAreRecoveredAndABrokenImageIsNeverMounted() throws {
        let (s, v, dir) = try setUpDomains()
        // A build cut short left a temporary; the daemon died while the VM ran.
        try FileOps.writeFile(v.domainDir("fedora") + "/.root.img.tmp", "half an image")
        let p = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertFalse(FileOps.exists(v.domainDir("fedora") + "/.root.img.tmp"))
        try guestWrite(p.privateDir!, "data", "written before the crash", scratch: dir + "/g")
        // Next start (no cleanupAfterStop): the missed stop is processed first (repair, revision base).
        let again = try v.prepareStart("work", in: s.snapshot(), form: .image)
        XCTAssertEqual(try FileOps.readFile(v.baseDir("work") + "/data"), "written before the crash")
        XCTAssertFalse(LoopDevice.isMountPoint(v.privateDir("work")))
        // The VM leaves garbage where its file system was: e2fsck cannot repair it, the host never mounts it.
        let fd = open(again.privateDir!, O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let junk = [UInt8](repeating: 0xA5, count: 1 << 20)
        for i in 0..<Int(small >> 20) { _ = junk.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(i << 20)) } }
        close(fd)
        assertDomainError("StoragePoolException", "will not mount it") { try v.cleanupAfterStop("work", in: s.snapshot()) }
        XCTAssertFalse(LoopDevice.isMountPoint(v.privateDir("work")))
        XCTAssertNil(LoopDevice.existingDevice(for: v.privateImage("work")))
    }
}
