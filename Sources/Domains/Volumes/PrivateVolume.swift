// The private volume with an enforced size (issue 11, finding 5): an ext4
// image `<domain>/private.img`, loop-mounted by the host on `<domain>/private`
// while the domain runs (and for a moment when the host itself reads or
// writes it: a revert, a disposable's copy), so a full volume fails writes
// with ENOSPC in its domain only, and a halted domain holds no mount or loop
// device. The image is made (mke2fs) when the domain is created, never on
// the start path; a start adds LOOP_CONFIGURE and one mount.
//
// A private volume that is still a plain directory (made before this change)
// is migrated the first time it is opened: its content is copied into a new
// image sized for it (at least the default), then the directory goes.
//
// A disposable's private is a snapshot discarded at stop, so it is a tmpfs
// of the same size (mounting it costs microseconds, it vanishes with its
// unmount, and the domain's own writes are charged to its memory cgroup).
#if canImport(Glibc)
import Glibc
#endif

extension VolumeManager {
    func privateImage(_ name: String) -> String { "\(domainDir(name))/private.img" }

    /// Mounts the domain's private volume on privateDir (making or migrating
    /// the image first if needed). Returns false if it was mounted already.
    @discardableResult
    public func openPrivate(_ name: String) throws(DomainError) -> Bool {
        let dir = privateDir(name), image = privateImage(name)
        if LoopDevice.isMountPoint(dir) { return false }
        try makePrivateImageIfMissing(name)
        try repairIfGuestWritten(name)      // a VM had its blocks: checked before the kernel reads them
        try FileOps.makeDirectories(dir)
        if LoopDevice.existingDevice(for: image) == nil { try VolumeImage.growFileSystemIfNeeded(image) }
        try LoopDevice.mount(image, at: dir)   // checks the recorded device again: cheap
        return true
    }

    /// Makes the private image (or migrates a plain private directory into one).
    func makePrivateImageIfMissing(_ name: String) throws(DomainError) {
        let dir = privateDir(name), image = privateImage(name)
        guard !FileOps.exists(image) else { return }
        if FileOps.isDirectory(dir), !(try FileOps.list(dir)).isEmpty {
            try migratePrivate(name)
        } else {
            let tmp = "\(domainDir(name))/.private.img.tmp"
            _ = unlink(tmp)
            try VolumeImage.create(tmp, bytes: defaultPrivateSize)
            try FileOps.rename(tmp, image)
            FileOps.syncDirectory(domainDir(name))
        }
    }

    /// Runs `body` with the private volume mounted, and leaves it as it found
    /// it: unmounted again only if this call mounted it and the domain has not
    /// started meanwhile (its start marks it running under the same lock).
    /// Concurrent callers for one domain (disposables of one template) take
    /// turns (PrivateVolumeLock).
    func withPrivateOpen<T>(_ name: String, _ body: () throws(DomainError) -> T) throws(DomainError) -> T {
        try PrivateVolumeLock.with(privateImage(name)) { () throws(DomainError) -> T in
            try refuseIfHeldByGuest(name)
            let opened = try openPrivate(name)
            let closeIfOurs = { () throws(DomainError) in
                if opened, !FileOps.exists(runningMarker(name)) { try closePrivate(name) }
            }
            do throws(DomainError) {
                let r = try body()
                try closeIfOurs()
                return r
            } catch {
                try? closeIfOurs()
                throw error
            }
        }
    }

    /// Mounts the private volume for a start and marks the domain running,
    /// as one step under the volume's lock, so a disposable's copy that
    /// mounted it a moment before leaves it mounted.
    func openPrivateForStart(_ name: String) throws(DomainError) {
        try PrivateVolumeLock.with(privateImage(name)) { () throws(DomainError) in
            try openPrivate(name)
            try FileOps.writeFile(runningMarker(name), "")
        }
    }

    /// The stop's work on the mounted private volume (revisions), under the
    /// volume's lock; unmounted after.
    func withPrivateOpenForStop<T>(_ name: String, _ body: () throws(DomainError) -> T) throws(DomainError) -> T {
        try PrivateVolumeLock.with(privateImage(name)) { () throws(DomainError) -> T in
            try openPrivate(name)       // after a daemon crash or a reboot it may be unmounted
            let r = try body()
            try closePrivate(name)
            return r
        }
    }

    /// Unmounts the private volume (at stop, before removal of the domain's volumes).
    public func closePrivate(_ name: String) throws(DomainError) {
        try LoopDevice.unmount(privateDir(name))
    }

    /// A plain private directory becomes an image holding the same content.
    private func migratePrivate(_ name: String) throws(DomainError) {
        let dir = privateDir(name), image = privateImage(name)
        let used = FileOps.diskUsage(dir)
        // Room for what is there plus a quarter, in whole MiB, at least the default.
        let needed = (used + used / 4 + VolumeImage.minimumSize + VolumeImage.mib - 1) / VolumeImage.mib * VolumeImage.mib
        let tmp = "\(domainDir(name))/.private.img.tmp", mnt = "\(domainDir(name))/.private.migrating"
        _ = unlink(tmp)
        try LoopDevice.unmount(mnt)
        try VolumeImage.create(tmp, bytes: max(defaultPrivateSize, min(needed, VolumeImage.maximumSize)))
        try FileOps.makeDirectories(mnt)
        try LoopDevice.mount(tmp, at: mnt)
        do throws(DomainError) {
            try Spawn.run(["cp", "-a", "-T", "--", dir, mnt])
        } catch {
            try? LoopDevice.unmount(mnt)
            _ = unlink(tmp)
            throw error
        }
        try LoopDevice.unmount(mnt)
        _ = rmdir(mnt)
        _ = unlink(LoopDevice.record(tmp))
        // The image is complete before it gets its name; then the old directory goes.
        try FileOps.rename(tmp, image)
        FileOps.syncDirectory(domainDir(name))
        let old = "\(domainDir(name))/.private.premigration"
        try FileOps.removeTree(old)
        try FileOps.rename(dir, old)
        try FileOps.removeTree(old)
    }

    // MARK: a disposable's snapshot

    /// A fresh tmpfs of the template's private size at `snap`, holding a copy
    /// of the template's private content. `cp -a` keeps the owners: a private
    /// volume holds the guest's own ids on disk whatever provider runs it
    /// (Plugins/vmm-native/README.md, "The private volume's owners"), so the
    /// copy needs no re-owning for the disposable.
    func makeSnapshotPrivate(_ snap: String, from template: String?) throws(DomainError) {
        var bytes = defaultPrivateSize
        if let t = template, let size = VolumeImage.size(privateImage(t)) { bytes = size }
        try FileOps.makeDirectories(snap, mode: 0o755)
        guard mount("tmpfs", snap, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755,size=\(bytes)") == 0 else {
            throw FileOps.fail("mount tmpfs at", snap)
        }
        if let t = template, FileOps.exists(privateImage(t)) || FileOps.isDirectory(privateDir(t)) {
            try withPrivateOpen(t) { () throws(DomainError) in try Spawn.run(["cp", "-a", "-T", "--", privateDir(t), snap]) }
        }
    }

    /// Discards a disposable's snapshot: an unmount, no walk of what it held.
    func discardSnapshotPrivate(_ snap: String) throws(DomainError) {
        try LoopDevice.unmount(snap)
        try FileOps.removeTree(snap)
    }

    // MARK: size

    /// Grows a volume (admin.vm.volume.Resize). Only the private volume has a
    /// size of its own to change; a disposable's private is its template's.
    /// While the domain runs, the file system grows online where the kernel
    /// allows it (CAP_SYS_RESOURCE), else at the next start.
    public func resize(_ volume: String, of name: String, to bytes: Int64, in s: DomainsSnapshot) throws(DomainError) {
        let info = try s.domain(name)
        guard volume == "private", info.klass.persistentPrivate else {
            throw .value("\(name):\(volume): this volume's size cannot be changed here"
                         + (volume == "private" ? " (a disposable's private is a snapshot of its template's)" : ""))
        }
        if !FileOps.exists(privateImage(name)) { try withPrivateOpen(name) {} }      // made or migrated first
        // A VM holding the image sees the new size at its next start (the host
        // cannot grow a file system a guest has mounted).
        try VolumeImage.grow(privateImage(name), to: bytes, mountedOn: LoopDevice.mountedDevice(at: privateDir(name)),
                             fileSystemLater: runningForm(name) == .image)
    }

    /// (size, used) of a mounted volume, from its file system.
    static func fileSystemUsage(_ mountPoint: String) -> (Int64, Int64)? {
        var fs = statvfs()
        guard statvfs(mountPoint, &fs) == 0 else { return nil }
        let size = Int64(fs.f_blocks) * Int64(fs.f_frsize)
        return (size, size - Int64(fs.f_bfree) * Int64(fs.f_frsize))
    }
}
