// Volumes following the Qubes model, as directories under the state dir.
// The mounting is done by the vmm-native plugin; this layer owns the paths,
// the per-start preparation, the cleanup after stop, revisions and revert.
//
// Layout (<state> = the stateDir given at init):
//   <state>/domains/<name>/private/            private volume (/rw, /home in the domain): the
//                                              mount point of private.img (see PrivateVolume.swift)
//   <state>/domains/<name>/private.img         its ext4 image (sparse, 2 GiB unless resized)
//   <state>/domains/<name>/private.base/       copy of private as of the last stop (hidden)
//   <state>/domains/<name>/private.revisions/<id>/   revisions, id = nanoseconds since epoch
//   <state>/domains/<name>/root/               own root (TemplateVM, StandaloneVM)
//   <state>/domains/<name>/root.hostlinked     marker: root shares inodes with the host
//   <state>/domains/<name>/private.snapshot/   DispVM: this start's copy of its template's private (a tmpfs)
//   <state>/domains/<name>/revert.pending      a revert in progress: the revision id
//   <state>/domains/<name>/running             marker: started and not yet cleaned after stop
//   <state>/run/<name>/                        run_dir (upper/work/merged: the plugin's)
//   <state>/staging/                           half-built templates (removed by recover())
//
// Revisions (Qubes semantics: a revision is the volume as it was when the
// session that just ended started, so revert undoes that session):
// at each stop, "rename and copy": the base (private as of the previous stop,
// i.e. as this session found it) is renamed into the revisions (O(1)), then
// private is copied to a new base with `cp -a --reflink=auto` (extents shared
// where the file system can; a plain copy elsewhere, as on ext4: one copy of
// the data written, bounded by the volume's size, per stop). Hard links would be
// wrong: the domain writes files in place, which would change the revision
// too. The copy is off the start path; it costs one copy per stop.
// Revisions beyond revisions_to_keep are removed, oldest first.
//
// Crash safety: every step is a rename or a copy into a temporary name then a
// rename; the `running` marker tells the next start that a stop was never
// processed, and that start processes it first.
#if canImport(Glibc)
import Glibc
#endif

/// admin.vm.volume.Info data.
public struct VolumeInfo: Sendable, Equatable {
    public let domain: String
    public let name: String
    public let pool: String
    public let vid: String
    public let path: String
    public let rw: Bool
    public let saveOnStop: Bool
    public let snapOnStart: Bool
    /// The volume this one is a snapshot of (`<domain>:root`), if any.
    public let source: String?
    public let revisionsToKeep: Int
    public let ephemeral: Bool
    /// The enforced size in bytes (0: none of its own).
    public var size: Int64 = 0
    public let usage: Int64
    public let revisions: [String]

    /// The `key=value` lines of admin.vm.volume.Info.
    public var qubesInfo: String {
        """
        pool=\(pool)
        vid=\(vid)
        size=\(size)
        usage=\(usage)
        rw=\(rw ? "True" : "False")
        source=\(source ?? "")
        path=\(path)
        save_on_stop=\(saveOnStop ? "True" : "False")
        snap_on_start=\(snapOnStart ? "True" : "False")
        revisions_to_keep=\(revisionsToKeep)
        ephemeral=\(ephemeral ? "True" : "False")
        is_outdated=False

        """
    }
}

public struct VolumeManager: Sendable {
    public let stateDir: String
    public static let pool = "default"

    /// The size of a new private volume (Qubes: 2 GiB); smaller in tests.
    public let defaultPrivateSize: Int64

    /// Told what a stop had to leave out (a revision it could not make).
    let warn: @Sendable (String) -> Void
    /// Told about slow work on a start path (a root image being built).
    let progress: @Sendable (String) -> Void

    public init(stateDir: String, defaultPrivateSize: Int64 = VolumeImage.defaultPrivateSize,
                warn: @escaping @Sendable (String) -> Void = { _ in },
                progress: @escaping @Sendable (String) -> Void = { _ in }) throws(DomainError) {
        guard stateDir.hasPrefix("/") else { throw .storage("state dir must be absolute: \(stateDir)") }
        try VolumeImage.checkSize(defaultPrivateSize, "default private volume size")
        self.stateDir = stateDir
        self.defaultPrivateSize = defaultPrivateSize
        self.warn = warn
        self.progress = progress
        // Search-only for others (0711) on the way to images and shares: a VM
        // provider's QEMU runs as its own user (libvirt-qemu) and opens the
        // files libvirt chowned to it by path, so it must pass through these
        // directories; it cannot list them. What lies in them keeps its own
        // mode (the store 0600, private images 0600, staging 0700).
        for d in [stateDir, "\(stateDir)/domains", "\(stateDir)/run"] {
            try FileOps.makeDirectories(d, mode: 0o711)
            _ = chmod(d, 0o711)
        }
        try FileOps.makeDirectories("\(stateDir)/staging", mode: 0o700)
    }

    public func domainDir(_ name: String) -> String { "\(stateDir)/domains/\(name)" }
    public func privateDir(_ name: String) -> String { "\(domainDir(name))/private" }
    public func rootDir(_ name: String) -> String { "\(domainDir(name))/root" }
    public func runDir(_ name: String) -> String { "\(stateDir)/run/\(name)" }
    func baseDir(_ name: String) -> String { "\(domainDir(name))/private.base" }
    func revisionsDir(_ name: String) -> String { "\(domainDir(name))/private.revisions" }
    func snapshotPrivateDir(_ name: String) -> String { "\(domainDir(name))/private.snapshot" }
    func runningMarker(_ name: String) -> String { "\(domainDir(name))/running" }

    /// Whether the domain's own root shares inodes with the host (a --from-host template).
    public func rootIsHostLinked(_ name: String) -> Bool { FileOps.exists("\(domainDir(name))/root.hostlinked") }

    // MARK: creation and removal

    /// Creates a domain's directories. A StandaloneVM's root starts as a copy
    /// of `rootFrom` (a domain whose root it clones) or empty; a TemplateVM
    /// gets its root from TemplateBuilder instead (empty here if none).
    public func createVolumes(_ name: String, klass: DomainClass, cloneRootFrom: String? = nil) throws(DomainError) {
        let dir = domainDir(name)
        guard !FileOps.exists(dir) else { throw .storage("volumes of '\(name)' already exist at \(dir)") }
        let staging = try makeStaging(name)
        if klass.persistentRoot {
            if let src = cloneRootFrom {
                if rootIsHostLinked(src) {
                    // Copying a host-linked root would copy the host's /usr: link again instead.
                    try TemplateBuilder.linkTree(rootDir(src), to: "\(staging)/root")
                    try FileOps.writeFile("\(staging)/root.hostlinked", "")
                } else {
                    try FileOps.copyTree(rootDir(src), to: "\(staging)/root")
                }
            } else {
                try FileOps.makeDirectories("\(staging)/root")
            }
        }
        try commitStaging(staging, as: name)
        // The private image is made now (mke2fs), not on the start path.
        if klass.persistentPrivate { try withPrivateOpen(name) {} }
    }

    /// A fresh directory under staging/ for building a domain's volumes.
    func makeStaging(_ name: String) throws(DomainError) -> String {
        var g = SystemRandomNumberGenerator()
        let dir = "\(stateDir)/staging/\(name).\(UInt32.random(in: 0...UInt32.max, using: &g))"
        try FileOps.makeDirectories(dir, mode: 0o700)
        _ = chmod(dir, 0o755)
        return dir
    }

    /// Atomically moves a built staging dir into place as the domain's dir.
    func commitStaging(_ staging: String, as name: String) throws(DomainError) {
        try FileOps.rename(staging, domainDir(name))
        FileOps.syncDirectory("\(stateDir)/domains")
    }

    /// Removes all of a domain's volumes (halted; the store entry is removed by the caller).
    public func removeVolumes(_ name: String) throws(DomainError) {
        try FileOps.removeTree(runDir(name))
        let dir = domainDir(name)
        guard FileOps.exists(dir) else { return }
        try unmountAll(under: dir)
        // Rename first so a crash mid-removal leaves only garbage in staging/.
        let trash = "\(stateDir)/staging/\(name).removed"
        try FileOps.removeTree(trash)
        try FileOps.rename(dir, trash)
        try FileOps.removeTree(trash)
    }

    // MARK: start and stop

    /// Prepares a halted domain for start and returns its volumes in `form`
    /// (tree: vmm-native; image: a provider with ODY_VMM_CAP_BLOCK_VOLUMES,
    /// see ImageForm.swift). Cleans what a crash between start and stop left
    /// (run dir, a stop that was never processed, a half-done revert).
    public func prepareStart(_ name: String, in s: DomainsSnapshot, form: StartForm = .tree) throws(DomainError) -> StartPlan {
        let info = try s.domain(name)
        guard info.klass != .adminVM else { throw .value("dom0 is not started by a provider") }
        let dir = domainDir(name)
        if !FileOps.isDirectory(dir) { try createVolumes(name, klass: info.klass) }
        try recoverRevert(name)
        if FileOps.exists(runningMarker(name)) {
            // The previous session never stopped cleanly: process its stop now.
            try cleanupAfterStop(name, in: s)
        }
        try FileOps.removeTree(runDir(name))

        let source = try s.rootSource(of: name)
        if form == .image {
            let plan = try prepareImageStart(name, klass: info.klass, template: info.template, source: source, in: s)
            try FileOps.writeFile(lastFormRecord(name), form.rawValue)
            try FileOps.makeDirectories("\(stateDir)/run", mode: 0o711)
            FileOps.syncDirectory(dir)
            return plan
        }
        try ensureRootTree(source, in: s)        // a VM session of the template may have written its image since
        let rootDir = rootDir(source)
        guard FileOps.isDirectory(rootDir), !(try FileOps.list(rootDir)).isEmpty else {
            throw .storage("\(name): root volume \(rootDir) is missing or empty"
                           + (source == name ? "" : " (template '\(source)')") + "; create it with --from-host or --from-rootfs")
        }
        let persistent = info.klass.persistentRoot && !rootIsHostLinked(name)
        var privateDir: String? = self.privateDir(name)
        if info.klass == .dispVM {
            // A snapshot of the disposable template's private, discarded at stop.
            let snap = snapshotPrivateDir(name)
            try discardSnapshotPrivate(snap)
            try makeSnapshotPrivate(snap, from: info.template)
            privateDir = snap
            try FileOps.writeFile(runningMarker(name), "")
        } else {
            try openPrivateForStart(name)   // mounts it and writes the marker, under the volume's lock
        }
        try FileOps.writeFile(lastFormRecord(name), form.rawValue)
        try FileOps.makeDirectories("\(stateDir)/run", mode: 0o711)
        FileOps.syncDirectory(dir)
        return StartPlan(rootDir: rootDir, rootMode: persistent ? .persistent : .snapshot, privateDir: privateDir,
                         runDir: runDir(name))
    }

    /// After the domain stopped (or was found dead): discard the run dir and
    /// snapshots, and for a persistent private volume rotate revisions.
    /// Returns the id of the revision created, if any.
    @discardableResult
    public func cleanupAfterStop(_ name: String, in s: DomainsSnapshot) throws(DomainError) -> String? {
        let info = try s.domain(name)
        let form = runningForm(name)        // nil: no session since the last cleanup
        try FileOps.removeTree(runDir(name))
        var created: String?
        if info.klass == .dispVM {
            try discardSnapshotPrivate(snapshotPrivateDir(name))
        } else if info.klass.persistentPrivate, form == .image || FileOps.isDirectory(privateDir(name)) {
            // Image form: mounted now, after the VM is gone (repaired first, see ImageForm.swift).
            let keep = try s.revisionsToKeep(volume: "private", of: name)
            created = try withPrivateOpenForStop(name) { () throws(DomainError) in try rotateRevisions(name, keep: keep) }
        }
        // The session may have written its own root: that form is now the newer one (RootImage.swift).
        if let form, info.klass.persistentRoot, !rootIsHostLinked(name) { try rootWasWritten(name, form: form) }
        if unlink(runningMarker(name)) == 0 { FileOps.syncDirectory(domainDir(name)) }
        return created
    }

    /// base -> revision (rename), private -> new base (copy), prune.
    private func rotateRevisions(_ name: String, keep: Int) throws(DomainError) -> String? {
        let revs = revisionsDir(name)
        try FileOps.makeDirectories(revs, mode: 0o700)
        try removeTemporaries(in: revs)
        guard keep > 0 else {
            // No revisions wanted: no base to keep either.
            try FileOps.removeTree(baseDir(name))
            for old in try revisions(of: name) { try FileOps.removeTree("\(revs)/\(old)") }
            return nil
        }
        var created: String?
        if keep > 0, FileOps.isDirectory(baseDir(name)) {
            let id = Self.newRevisionID(existing: try FileOps.list(revs))
            try FileOps.rename(baseDir(name), "\(revs)/\(id)")
            created = id
        } else {
            try FileOps.removeTree(baseDir(name))
        }
        try makeBase(name, reason: "stop")
        let all = try revisions(of: name)
        for old in all.dropLast(max(keep, 0)) { try FileOps.removeTree("\(revs)/\(old)") }
        FileOps.syncDirectory(domainDir(name))
        FileOps.syncDirectory(revs)
        return created
    }

    /// The base (what the next revision will be): a copy of the private
    /// volume as it is now, to a temporary name, then renamed (never a half
    /// base). Some trees cannot be copied: `cp -a` stops at paths longer than
    /// PATH_MAX, and a domain can build those (deep directories, or long
    /// names a file copy brought in). That must never keep the domain from
    /// starting again, so the copy is best effort: on failure there is no
    /// base (the next stop makes no revision unless the tree copies by then)
    /// and `warn` says why.
    private func makeBase(_ name: String, reason: String) throws(DomainError) {
        let tmp = "\(domainDir(name))/.private.base.tmp"
        try FileOps.removeTree(tmp)
        try FileOps.removeTree(baseDir(name))
        do throws(DomainError) {
            try FileOps.copyTree(privateDir(name), to: tmp)
        } catch {
            try FileOps.removeTree(tmp)
            warn("\(name): the private volume could not be copied for its next revision (\(reason)): \(error.message); "
                 + "the domain starts as usual, without that revision")
            return
        }
        try FileOps.rename(tmp, baseDir(name))
    }

    private func removeTemporaries(in dir: String) throws(DomainError) {
        for n in try FileOps.list(dir) where n.hasPrefix(".") { try FileOps.removeTree("\(dir)/\(n)") }
    }

    /// Revision ids: nanoseconds since the epoch, zero-padded (sort = age).
    static func newRevisionID(existing: [String]) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var n = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        while existing.contains(pad(n)) { n += 1 }
        return pad(n)
    }

    static func pad(_ n: UInt64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    // MARK: revisions and revert

    /// Revision ids of the private volume, oldest first (admin.vm.volume.ListSnapshots).
    public func revisions(of name: String, volume: String = "private") throws(DomainError) -> [String] {
        guard volume == "private" else { return [] }
        let revs = revisionsDir(name)
        guard FileOps.isDirectory(revs) else { return [] }
        return try FileOps.list(revs).filter { !$0.hasPrefix(".") }
    }

    /// Restores a revision (default: the newest) of the private volume; the
    /// domain must be halted. The revision is consumed; the current content is discarded.
    public func revert(_ name: String, volume: String = "private", to revision: String? = nil, isRunning: Bool,
                       in s: DomainsSnapshot) throws(DomainError) {
        let info = try s.domain(name)
        guard volume == "private", info.klass.persistentPrivate else {
            throw .value("\(name): volume '\(volume)' has no revisions")
        }
        guard !isRunning else { throw .notHalted(name) }
        try recoverRevert(name)
        if FileOps.exists(runningMarker(name)) { try cleanupAfterStop(name, in: s) }
        let all = try revisions(of: name)
        guard let rev = revision ?? all.last else { throw .value("\(name):\(volume): no revisions to revert to") }
        guard all.contains(rev) else { throw .value("\(name):\(volume): no revision '\(rev)'") }
        // The private volume is a mount point: its content is replaced, under
        // a marker that makes a crash in the middle finish the revert later.
        try FileOps.writeFile(revertMarker(name), rev)
        FileOps.syncDirectory(domainDir(name))
        try finishRevert(name, to: rev)
    }

    func revertMarker(_ name: String) -> String { "\(domainDir(name))/revert.pending" }

    /// Empties the private volume, copies the revision in, consumes it, and
    /// makes the next base the reverted content. Safe to run again.
    private func finishRevert(_ name: String, to rev: String) throws(DomainError) {
        let priv = privateDir(name), revDir = "\(revisionsDir(name))/\(rev)"
        try withPrivateOpen(name) { () throws(DomainError) in
            if FileOps.isDirectory(revDir) {
                try FileOps.emptyDirectory(priv)
                try Spawn.run(["cp", "-a", "-T", "--", revDir, priv])
                try FileOps.removeTree(revDir)
            }
            // The next revision must be "as the next session found it": the reverted content.
            try makeBase(name, reason: "revert")
        }
        _ = unlink(revertMarker(name))
        FileOps.syncDirectory(domainDir(name))
    }

    /// Finishes or undoes a revert interrupted by a crash.
    private func recoverRevert(_ name: String) throws(DomainError) {
        if let rev = try? FileOps.readFile(revertMarker(name), limit: 64) {
            // A revision id is digits (newRevisionID); anything else is not ours to follow as a path.
            guard !rev.isEmpty, rev.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw .storage("\(revertMarker(name)): not a revision id; remove it to continue")
            }
            try finishRevert(name, to: rev)
        }
        // Before the private volume was an image, a revert renamed directories.
        let priv = privateDir(name), old = "\(domainDir(name))/private.old"
        guard FileOps.exists(old) else { return }
        if FileOps.exists(priv) { try FileOps.removeTree(old) }      // the revision was in place
        else { try FileOps.rename(old, priv) }                        // undo the first rename
    }

    // MARK: listing

    public func volumeNames(of name: String, in s: DomainsSnapshot) throws(DomainError) -> [String] {
        let k = try s.domain(name).klass
        return k == .adminVM ? [] : ["private", "root", "volatile"]
    }

    /// `form`: which representation to describe (default: that of the
    /// domain's current or last start, tree if never started).
    public func info(_ volume: String, of name: String, in s: DomainsSnapshot,
                     form: StartForm? = nil) throws(DomainError) -> VolumeInfo {
        let d = try s.domain(name)
        guard try volumeNames(of: name, in: s).contains(volume) else { throw .value("\(name): no volume '\(volume)'") }
        let keep = try s.revisionsToKeep(volume: volume, of: name)
        if (form ?? lastForm(name)) == .image { return try imageInfo(volume, of: name, d, keep: keep, in: s) }
        switch volume {
        case "root":
            let src = try s.rootSource(of: name)
            let persistent = d.klass.persistentRoot && !rootIsHostLinked(name)
            // A snapshot root's changes are bounded by the upper the jailer mounts (10 GiB tmpfs);
            // a persistent root (a TemplateVM's, a StandaloneVM's) has no size of its own yet.
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(src)/root", path: rootDir(src),
                              rw: true, saveOnStop: persistent, snapOnStart: !persistent,
                              source: src == name ? nil : "\(src):root", revisionsToKeep: 0, ephemeral: false,
                              size: persistent ? 0 : VolumeImage.defaultRootSize,
                              // Not computed: it would walk the whole tree (and count the host's files
                              // for a host-linked template) on every Info call.
                              usage: 0, revisions: [])
        case "private":
            let disp = d.klass == .dispVM
            let path = disp ? snapshotPrivateDir(name) : privateDir(name)
            // A mounted volume's usage is its file system's (no walk of the domain's tree).
            // Halted: what the image takes on the host disk.
            let fsUsage = LoopDevice.isMountPoint(path) ? Self.fileSystemUsage(path) : nil
            let size = disp ? (fsUsage?.0 ?? 0) : (VolumeImage.size(privateImage(name)) ?? 0)
            let halted = disp ? 0 : (FileOps.exists(privateImage(name)) ? VolumeImage.allocated(privateImage(name)) : FileOps.diskUsage(path))
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(name)/private", path: path,
                              rw: true, saveOnStop: !disp, snapOnStart: disp,
                              source: disp ? d.template.map { "\($0):private" } : nil,
                              revisionsToKeep: disp ? 0 : keep, ephemeral: false, size: size,
                              usage: fsUsage?.1 ?? halted, revisions: try revisions(of: name))
        default:
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(name)/volatile", path: "\(runDir(name))/volatile",
                              rw: true, saveOnStop: false, snapOnStart: false, source: nil, revisionsToKeep: 0,
                              ephemeral: true, usage: 0, revisions: [])
        }
    }

    // MARK: pool

    /// admin.pool.Info for the one pool (`default`): the state dir's file system.
    public func poolInfo() -> [(String, String)] {
        var fs = statvfs()
        let ok = statvfs(stateDir, &fs) == 0
        let size = ok ? UInt64(fs.f_blocks) * UInt64(fs.f_frsize) : 0
        let free = ok ? UInt64(fs.f_bavail) * UInt64(fs.f_frsize) : 0
        return [("driver", "odyssey-dir"), ("dir_path", "\(stateDir)/domains"), ("name", Self.pool),
                ("revisions_to_keep", "1"), ("size", String(size)), ("usage", String(size - min(size, free)))]
    }

    // MARK: recovery at daemon start

    /// Removes half-built templates and removed-domain leftovers in staging/,
    /// and volume directories of domains the store does not know (a crash
    /// between building a template and committing it). Returns what was removed.
    /// What a domain left behind must never stop the daemon from starting: a
    /// leftover that cannot be removed is reported to `failed` and kept for
    /// the next start; only an unreadable state directory throws.
    @discardableResult
    public func recover(knownDomains: Set<String>, failed: (String) -> Void = { _ in }) throws(DomainError) -> [String] {
        var removed: [String] = []
        var leftovers = try FileOps.list("\(stateDir)/staging").map { "staging/\($0)" }
        leftovers += try FileOps.list("\(stateDir)/domains").filter { !knownDomains.contains($0) }.map { "domains/\($0)" }
        for rel in leftovers {
            do throws(DomainError) {
                try unmountAll(under: "\(stateDir)/\(rel)")
                try FileOps.removeTree("\(stateDir)/\(rel)")
                removed.append(rel)
            } catch {
                failed("cannot remove \(rel) (kept; the daemon starts without it): \(error.message)")
            }
        }
        return removed
    }

    /// Unmounts every volume mounted at or below `dir` (deepest first): a
    /// removed or half-built domain's private image or snapshot.
    func unmountAll(under dir: String) throws(DomainError) {
        for m in FileOps.mountPoints(under: dir).sorted(by: { $0.count > $1.count }) { try LoopDevice.unmount(m) }
    }
}
