// A root volume as a disk image a VM can boot: `<domain>/root.img`, raw ext4,
// no partition table, built from the root tree with `mke2fs -d` (the tree is
// read, nothing is mounted; argv, never a shell).
//
// Size: a fixed sparse 10 GiB (Qubes' root size, and what native gives a
// snapshot root's upper), or the tree's usage plus a quarter when that is
// more. Fixed rather than "usage plus headroom" because a TemplateVM installs
// packages into it in place and an AppVM's snapshot writes land in its
// copy-on-write layer against this size; a sparse file costs the host only
// what the tree holds (about the tree's size plus a few MiB of metadata).
//
// One root, two forms: the tree (native starts) and the image (VM starts).
// Each carries a generation (`root.tree.gen`, `root.img.gen`; a tree with no
// file is generation 1, an image with none is outdated). A session that may
// have written a form bumps that form's generation above both at its stop
// (a TemplateVM's or StandaloneVM's own root; a host-linked root is always a
// snapshot and never written). Whoever needs a form brings it up to date
// first, lazily: an image start rebuilds an outdated root.img from the tree
// (seconds for a Debian tree; said through `progress`), a tree start
// re-extracts a newer image into the tree (loop mount after e2fsck, `cp -a`).
// A template whose root never changes is built once.
//
// Crash safety: the image is built under a temporary name, fsynced, renamed,
// and only then its generation written; a tree is extracted beside the old
// one and swapped in by renames. A crash leaves a temporary the next build
// removes, never a half image under the real name.
#if canImport(Glibc)
import Glibc
#endif

extension VolumeManager {
    public func rootImage(_ name: String) -> String { "\(domainDir(name))/root.img" }
    func treeGenerationFile(_ name: String) -> String { "\(domainDir(name))/root.tree.gen" }
    func imageGenerationFile(_ name: String) -> String { "\(domainDir(name))/root.img.gen" }

    /// The tree's generation (1 when never bumped).
    func treeGeneration(_ name: String) -> UInt64 { readGeneration(treeGenerationFile(name)) ?? 1 }
    /// The image's generation (0: none or outdated).
    func imageGeneration(_ name: String) -> UInt64 {
        FileOps.exists(rootImage(name)) ? (readGeneration(imageGenerationFile(name)) ?? 0) : 0
    }

    private func readGeneration(_ file: String) -> UInt64? {
        guard let text = try? FileOps.readFile(file, limit: 32) else { return nil }
        return UInt64(text.split(separator: "\n").first ?? "")
    }

    private func writeGeneration(_ file: String, _ gen: UInt64) throws(DomainError) {
        let tmp = file + ".tmp"
        try FileOps.writeFile(tmp, "\(gen)\n")
        try FileOps.rename(tmp, file)
    }

    /// After a session that may have written `name`'s own root in `form`:
    /// that form becomes the newer one.
    func rootWasWritten(_ name: String, form: StartForm) throws(DomainError) {
        let next = max(treeGeneration(name), imageGeneration(name)) + 1
        try writeGeneration(form == .tree ? treeGenerationFile(name) : imageGenerationFile(name), next)
        FileOps.syncDirectory(domainDir(name))
    }

    /// Marks the tree as changed (a template created or re-imported in place).
    public func rootTreeChanged(_ name: String) throws(DomainError) { try rootWasWritten(name, form: .tree) }

    /// Whether `name`'s root.img is current with its tree.
    public func rootImageIsCurrent(_ name: String) -> Bool { imageGeneration(name) >= treeGeneration(name) }

    /// The root image of `name`, built or rebuilt from its tree first if the
    /// tree is newer. Returns its path.
    @discardableResult
    public func ensureRootImage(_ name: String) throws(DomainError) -> String {
        let image = rootImage(name)
        return try PrivateVolumeLock.with(image) { () throws(DomainError) -> String in
            if rootImageIsCurrent(name) { return image }
            let tree = rootDir(name)
            guard FileOps.isDirectory(tree), !(try FileOps.list(tree)).isEmpty else {
                throw .storage("\(name): root volume \(tree) is missing or empty and it has no current root image; "
                               + "create it with --from-host or --from-rootfs")
            }
            let gen = treeGeneration(name)
            let t0 = TemplateBuilder.now()
            progress("\(name): building its root image from \(tree) (mke2fs -d; seconds for a full system)")
            try Self.buildImage(from: tree, at: image)
            try writeGeneration(imageGenerationFile(name), gen)
            FileOps.syncDirectory(domainDir(name))
            let secs = Int((TemplateBuilder.now() - t0) * 1000)
            progress("\(name): root image ready (\(VolumeImage.allocated(image) >> 20) MiB used, \(secs) ms)")
            return image
        }
    }

    /// The tree of `name`, re-extracted from its root image first if a VM
    /// session wrote the image since. Not while native domains run on the
    /// old tree (it is their overlay's lower layer): the start waits for them.
    public func ensureRootTree(_ name: String, in s: DomainsSnapshot) throws(DomainError) {
        let image = rootImage(name)
        try PrivateVolumeLock.with(image) { () throws(DomainError) in
            guard imageGeneration(name) > treeGeneration(name) else { return }
            let onTree = s.domainNames.filter { other in
                (try? s.rootSource(of: other)) == name && runningForm(other) == .tree
            }
            guard onTree.isEmpty else {
                throw .storage("\(name): its root changed while it ran as a VM, and native domains still run on the "
                               + "old tree (\(onTree.joined(separator: ", "))); stop them so the tree can follow")
            }
            progress("\(name): its root image is newer than its tree (it ran as a VM): copying it into the tree")
            try extractImage(image, into: rootDir(name), in: domainDir(name))
            try writeGeneration(treeGenerationFile(name), imageGeneration(name))
            FileOps.syncDirectory(domainDir(name))
        }
    }

    /// mke2fs -d into `<image>.tmp`, fsync, rename.
    static func buildImage(from tree: String, at image: String) throws(DomainError) {
        let used = FileOps.diskUsage(tree)
        let wanted = (used + used / 4 + VolumeImage.minimumSize + VolumeImage.mib - 1) / VolumeImage.mib * VolumeImage.mib
        let bytes = min(max(VolumeImage.defaultRootSize, wanted), VolumeImage.maximumSize)
        let tmp = "\(parentDir(image))/.\(baseName(image)).tmp"
        _ = unlink(tmp)
        // Readable by the hypervisor's user (a snapshot's backing file); the
        // tree it comes from is a template's system, not a domain's data.
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FileOps.fail("create", tmp) }
        let sized = ftruncate(fd, off_t(bytes)) == 0
        let e = errno
        close(fd)
        guard sized else { _ = unlink(tmp); throw FileOps.fail("ftruncate", tmp, e) }
        do throws(DomainError) {
            // A journal (lazily initialised: nothing written): a VM killed
            // while writing its own root in place must come back clean.
            try Spawn.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "odyssey-root", "-m", "0", "-d", tree,
                           "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "--", tmp])
            let sync = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard sync >= 0, fsync(sync) == 0 else {
                let e = errno
                if sync >= 0 { close(sync) }
                throw FileOps.fail("fsync", tmp, e)
            }
            close(sync)
            _ = chmod(tmp, 0o644)
            try FileOps.rename(tmp, image)
        } catch {
            _ = unlink(tmp)
            throw error
        }
        FileOps.syncDirectory(parentDir(image))
    }

    /// Replaces `tree` with the content of `image`: e2fsck (a guest wrote the
    /// image: it is checked in user space before the host kernel reads it),
    /// mount, copy beside the tree, swap by renames.
    private func extractImage(_ image: String, into tree: String, in dir: String) throws(DomainError) {
        try Self.repairGuestWritten(image)
        let mnt = "\(dir)/.root.extracting", fresh = "\(dir)/.root.new", old = "\(dir)/.root.old"
        try LoopDevice.unmount(mnt)
        try FileOps.removeTree(fresh)
        try FileOps.makeDirectories(mnt)
        try LoopDevice.mount(image, at: mnt)
        do throws(DomainError) {
            try Spawn.run(["cp", "-a", "-T", "--", mnt, fresh])
            _ = try? FileOps.removeTree("\(fresh)/lost+found")
        } catch {
            try? LoopDevice.unmount(mnt)
            try? FileOps.removeTree(fresh)
            throw error
        }
        try LoopDevice.unmount(mnt)
        _ = rmdir(mnt)
        _ = unlink(LoopDevice.record(image))
        try FileOps.removeTree(old)
        if FileOps.exists(tree) { try FileOps.rename(tree, old) }
        try FileOps.rename(fresh, tree)
        FileOps.syncDirectory(dir)
        try FileOps.removeTree(old)
    }

    /// e2fsck -f -y on an image a guest had raw access to: its metadata may
    /// be anything. Repaired or clean is fine; beyond repair fails closed.
    static func repairGuestWritten(_ image: String) throws(DomainError) {
        let r = try Spawn.run(["e2fsck", "-f", "-y", "--", image], allowFailure: true)
        guard r.status & ~3 == 0 else {
            throw .storage("\(image): e2fsck could not repair the file system its VM left (status \(r.status)): "
                           + "\(r.stderr.prefix(300)); the host will not mount it. Inspect it with `e2fsck -f \(image)`")
        }
    }

    static func parentDir(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    static func baseName(_ path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }
}
