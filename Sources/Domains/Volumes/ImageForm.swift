// The image form of a start (a provider with ODY_VMM_CAP_BLOCK_VOLUMES): the
// host hands over disk images and mounts nothing.
//
// - ROOT: the template's root.img as a snapshot (AppVM, DispVM, and a
//   host-linked template, which is never written), or the domain's own
//   root.img written in place (TemplateVM, StandaloneVM). See RootImage.swift.
// - PRIVATE: `<domain>/private.img`, the same image a tree-form start
//   loop-mounts (a provider switch needs no rebuild). While the VM runs the
//   host must not mount it: the start unmounts a host mount left over, and
//   writes the running marker with "image" in it, under the volume's lock;
//   every host-side open (a disposable's copy, a revert, a resize) refuses
//   while that marker says a guest holds the image. The guest had raw access
//   to the blocks, so before the host mounts the image again (the revision
//   rotation at stop, a revert) it is repaired with e2fsck in user space
//   (marker `private.img.guest`), and one that cannot be repaired is never mounted.
// - DispVM PRIVATE: a snapshot of the disposable template's private image as
//   of its last stop, `<template>/private.dispvm.img`: a sparse copy of
//   private.img, remade when private.img changed (inode, size, mtime). A
//   copy, not private.img itself, because the template may start (and write
//   private.img) while disposables still read their backing file. Replaced by
//   rename, so a running disposable keeps the inode it started on.
// - VOLATILE: form none, 1 GiB: the provider makes the scratch file in the run dir.
#if canImport(Glibc)
import Glibc
#endif

extension VolumeManager {
    /// Size of the volatile volume (Qubes' default; there is no property for it yet).
    public static let volatileMiB: UInt64 = 1024

    func guestWrittenMarker(_ name: String) -> String { "\(privateImage(name)).guest" }
    func lastFormRecord(_ name: String) -> String { "\(domainDir(name))/start.form" }
    public func publishedPrivateImage(_ template: String) -> String { "\(domainDir(template))/private.dispvm.img" }

    /// The form of the session in progress (or never cleaned after), nil if none.
    func runningForm(_ name: String) -> StartForm? {
        guard let text = try? FileOps.readFile(runningMarker(name), limit: 16) else { return nil }
        return text.hasPrefix("image") ? .image : .tree
    }

    /// The form of the current or last start (tree for a domain never started).
    public func lastForm(_ name: String) -> StartForm {
        if let f = runningForm(name) { return f }
        return (try? FileOps.readFile(lastFormRecord(name), limit: 16)).flatMap { StartForm(rawValue: $0) } ?? .tree
    }

    /// Refuses host access to a private image a running VM holds.
    func refuseIfHeldByGuest(_ name: String) throws(DomainError) {
        if runningForm(name) == .image {
            throw .storage("\(name): its private volume is attached to its running VM; "
                           + "the host does not mount it until \(name) stops")
        }
    }

    /// The image-form StartPlan (after prepareStart's common recovery).
    func prepareImageStart(_ name: String, klass: DomainClass, template: String?, source: String,
                           in s: DomainsSnapshot) throws(DomainError) -> StartPlan {
        let ownRoot = klass.persistentRoot && !rootIsHostLinked(name)
        try refuseRootWriterBesideSnapshots(name, ownRoot: ownRoot, source: source, in: s)
        let root = try ensureRootImage(source)
        var volumes = [PlannedVolume(role: .root, form: .image, snapshot: !ownRoot, path: root,
                                     sizeMiB: UInt64((VolumeImage.size(root) ?? 0) >> 20))]
        if klass == .dispVM {
            guard let template else { throw .storage("\(name): a disposable without a template") }
            let snap = try publishPrivateImage(template)
            volumes.append(PlannedVolume(role: .private, form: .image, snapshot: true, path: snap,
                                         sizeMiB: UInt64((VolumeImage.size(snap) ?? 0) >> 20)))
            try FileOps.writeFile(runningMarker(name), StartForm.image.rawValue)
        } else {
            let image = privateImage(name)
            try PrivateVolumeLock.with(image) { () throws(DomainError) in
                try readyPrivateImage(name)
                try FileOps.writeFile(guestWrittenMarker(name), "")
                try FileOps.writeFile(runningMarker(name), StartForm.image.rawValue)
            }
            volumes.append(PlannedVolume(role: .private, form: .image, path: image,
                                         sizeMiB: UInt64((VolumeImage.size(image) ?? 0) >> 20)))
        }
        volumes.append(PlannedVolume(role: .volatile, form: .none, path: "", sizeMiB: Self.volatileMiB))
        return StartPlan(form: .image, volumes: volumes, runDir: runDir(name))
    }

    /// A root image written in place must not be the backing file of a
    /// running snapshot (its copy-on-write layer would read changed blocks
    /// under a file system it cached): a TemplateVM's VM start waits for its
    /// children's VM stop, and a child's VM start for its template's VM stop
    /// (or native stop, when the image must be rebuilt from the tree). (Running markers: a child that crashed unprocessed counts until its
    /// next start or stop processes it.)
    func refuseRootWriterBesideSnapshots(_ name: String, ownRoot: Bool, source: String,
                                         in s: DomainsSnapshot) throws(DomainError) {
        if ownRoot {
            let running = s.domainNames.filter { other in
                other != name && (try? s.rootSource(of: other)) == name && runningForm(other) == .image
            }
            guard running.isEmpty else {
                throw .storage("\(name): its root image is the snapshot base of running domains "
                               + "(\(running.joined(separator: ", "))); stop them before starting \(name) as a VM")
            }
        } else if source != name, !rootIsHostLinked(source), let form = runningForm(source) {
            if form == .image {
                throw .storage("\(name): its template \(source) runs as a VM and writes the root image now; "
                               + "start \(name) after \(source) stops")
            }
            // Natively: its tree changes now; an image built from it would be torn.
            if !rootImageIsCurrent(source) {
                throw .storage("\(name): the root image of its template \(source) must be rebuilt from a tree that "
                               + "\(source), running now, is changing; start \(name) after \(source) stops")
            }
        }
    }

    /// private.img exists, is mounted nowhere on the host, is repaired if a
    /// guest wrote it, and its file system fills it (a resize while halted
    /// or while it ran as a VM). Called with the volume's lock held.
    func readyPrivateImage(_ name: String) throws(DomainError) {
        let image = privateImage(name), dir = privateDir(name)
        try makePrivateImageIfMissing(name)
        if LoopDevice.isMountPoint(dir) { try closePrivate(name) }
        if let device = LoopDevice.existingDevice(for: image) {
            throw .storage("\(name): \(image) is still attached to \(device) (mounted by the host elsewhere?); "
                           + "a VM must be its only user. Unmount it, then start \(name) again")
        }
        try repairIfGuestWritten(name)
        try VolumeImage.growFileSystemIfNeeded(image)
    }

    /// e2fsck before the host mounts an image its guest wrote (see the file comment).
    func repairIfGuestWritten(_ name: String) throws(DomainError) {
        let marker = guestWrittenMarker(name)
        guard FileOps.exists(marker) else { return }
        try Self.repairGuestWritten(privateImage(name))
        _ = unlink(marker)
        FileOps.syncDirectory(domainDir(name))
    }

    /// The disposable template's private as of its last stop, as an image a
    /// disposable can snapshot (see the file comment). Returns its path.
    func publishPrivateImage(_ template: String) throws(DomainError) -> String {
        let image = privateImage(template), published = publishedPrivateImage(template)
        let stampFile = published + ".stamp"
        return try PrivateVolumeLock.with(image) { () throws(DomainError) -> String in
            var form = runningForm(template)
            // A tree-form marker with nothing mounted: a stop a crash skipped; the image is idle.
            if form == .tree, !LoopDevice.isMountPoint(privateDir(template)) { form = nil }
            switch form {
            case .image?:
                // Its VM writes private.img now: the copy of its last stop serves.
                guard FileOps.exists(published) else {
                    throw .storage("\(template) runs as a VM and its private volume was never published for "
                                   + "disposables; stop \(template) once, then start the disposable")
                }
                return published
            case .tree?:
                // Mounted by the host while it runs natively: copy the files, not the live blocks.
                let bytes = VolumeImage.size(image) ?? defaultPrivateSize
                try Self.buildPrivateCopy(from: privateDir(template), bytes: bytes, at: published)
                _ = unlink(stampFile)
                return published
            case nil:
                try readyPrivateImage(template)
                let stamp = Self.stamp(image)
                if FileOps.exists(published), (try? FileOps.readFile(stampFile, limit: 128)) == stamp { return published }
                let tmp = "\(domainDir(template))/.private.dispvm.img.tmp"
                _ = unlink(tmp)
                do throws(DomainError) {
                    try Spawn.run(["cp", "--sparse=always", "--reflink=auto", "--", image, tmp])
                    _ = chmod(tmp, 0o600)
                    try FileOps.rename(tmp, published)
                } catch {
                    _ = unlink(tmp)
                    throw error
                }
                try FileOps.writeFile(stampFile, stamp)
                FileOps.syncDirectory(domainDir(template))
                return published
            }
        }
    }

    /// An image of `bytes` holding the files under `dir` (mke2fs -d), renamed into place.
    static func buildPrivateCopy(from dir: String, bytes: Int64, at image: String) throws(DomainError) {
        let tmp = "\(parentDir(image))/.\(baseName(image)).tmp"
        _ = unlink(tmp)
        try VolumeImage.create(tmp, bytes: bytes, populateFrom: dir)
        do throws(DomainError) { try FileOps.rename(tmp, image) } catch { _ = unlink(tmp); throw error }
        FileOps.syncDirectory(parentDir(image))
    }

    /// What says "private.img changed": inode, size, modification time.
    static func stamp(_ image: String) -> String {
        guard let st = FileOps.lstatOf(image) else { return "" }
        return "\(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }
}

extension VolumeManager {
    /// admin.vm.volume.Info of an image-form volume: the image's path, its
    /// apparent size, and what it takes on the host disk as usage (the host
    /// does not look inside an image a guest holds).
    func imageInfo(_ volume: String, of name: String, _ d: DomainInfo, keep: Int,
                   in s: DomainsSnapshot) throws(DomainError) -> VolumeInfo {
        switch volume {
        case "root":
            let src = try s.rootSource(of: name)
            let own = d.klass.persistentRoot && !rootIsHostLinked(name)
            let image = rootImage(src)
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(src)/root.img", path: image,
                              rw: true, saveOnStop: own, snapOnStart: !own,
                              source: src == name ? nil : "\(src):root", revisionsToKeep: 0, ephemeral: false,
                              size: VolumeImage.size(image) ?? VolumeImage.defaultRootSize,
                              usage: VolumeImage.allocated(image), revisions: [])
        case "private":
            let disp = d.klass == .dispVM
            let image = disp ? d.template.map { publishedPrivateImage($0) } ?? "" : privateImage(name)
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(name)/private.img", path: image,
                              rw: true, saveOnStop: !disp, snapOnStart: disp,
                              source: disp ? d.template.map { "\($0):private" } : nil,
                              revisionsToKeep: disp ? 0 : keep, ephemeral: false,
                              size: VolumeImage.size(image) ?? (disp ? 0 : defaultPrivateSize),
                              usage: VolumeImage.allocated(image), revisions: try revisions(of: name))
        default:
            return VolumeInfo(domain: name, name: volume, pool: Self.pool, vid: "\(name)/volatile", path: runDir(name),
                              rw: true, saveOnStop: false, snapOnStart: false, source: nil, revisionsToKeep: 0,
                              ephemeral: true, size: Int64(Self.volatileMiB) << 20, usage: 0, revisions: [])
        }
    }
}
