// admin.vm.volume.CloneTo's copy: one domain's persistent volume replaced by
// a copy of another's (qvm-clone copies every save_on_stop volume after
// creating the new domain). The destination is halted. A running source's
// private volume is copied as of its last stop (the tree kept for its next
// revision, private.base), as Qubes' pools copy a running volume's last
// committed state: the live image is being written, a copy of it would be
// torn. A running source's root is refused (a persistent root is written in
// place). The copy is built beside the volume and renamed over it, so a
// failure leaves the destination as it was.
#if canImport(Glibc)
import Glibc
#endif

extension VolumeManager {
    /// The volumes a clone copies: those that outlive a stop.
    public func clonableVolume(_ volume: String, of klass: DomainClass) -> Bool {
        switch volume {
        case "private": klass.persistentPrivate
        case "root": klass.persistentRoot
        default: false
        }
    }

    /// Replaces `dst`'s `volume` with a copy of `src`'s.
    public func cloneVolume(_ volume: String, from src: String, to dst: String, in s: DomainsSnapshot) throws(DomainError) {
        let srcClass = try s.domain(src).klass, dstClass = try s.domain(dst).klass
        guard clonableVolume(volume, of: srcClass), clonableVolume(volume, of: dstClass) else {
            throw .value("volume '\(volume)' cannot be cloned from \(src) (\(srcClass.rawValue)) to \(dst) (\(dstClass.rawValue))")
        }
        guard src != dst else { return }
        if volume == "private" { try clonePrivate(from: src, to: dst) } else { try cloneRoot(from: src, to: dst, in: s) }
    }

    private func clonePrivate(from src: String, to dst: String) throws(DomainError) {
        // Both images locked, in name order (two clones crossing cannot deadlock).
        let (first, second) = src < dst ? (src, dst) : (dst, src)
        try PrivateVolumeLock.with(privateImage(first)) { () throws(DomainError) in
            try PrivateVolumeLock.with(privateImage(second)) { () throws(DomainError) in
                // Checked under the locks: a start marks the domain running under the same lock.
                if FileOps.exists(runningMarker(dst)) { throw DomainError.notHalted(dst) }
                try refuseIfHeldByGuest(dst)
                if LoopDevice.isMountPoint(privateDir(dst)) { try closePrivate(dst) }   // left by a crash
                let tmp = "\(domainDir(dst))/.private.img.clone"
                _ = unlink(tmp)
                do throws(DomainError) {
                    if FileOps.exists(runningMarker(src)) {
                        // Its state as of its last stop (a stop rewrites the base under this same lock).
                        guard FileOps.isDirectory(baseDir(src)) else {
                            throw DomainError.storage("\(src) has run since it was created and has not stopped yet: "
                                                      + "nothing of its private volume is committed to copy; shut it down first")
                        }
                        let bytes = VolumeImage.size(privateImage(src)) ?? defaultPrivateSize
                        try VolumeImage.create(tmp, bytes: bytes, populateFrom: baseDir(src))
                    } else {
                        try refuseIfHeldByGuest(src)
                        try makePrivateImageIfMissing(src)
                        _ = try Spawn.run(["cp", "--reflink=auto", "--sparse=always", "--", privateImage(src), tmp])
                    }
                    try FileOps.rename(tmp, privateImage(dst))
                } catch {
                    _ = unlink(tmp)
                    throw error
                }
                FileOps.syncDirectory(domainDir(dst))
            }
        }
    }

    private func cloneRoot(from src: String, to dst: String, in s: DomainsSnapshot) throws(DomainError) {
        for d in [src, dst] where FileOps.exists(runningMarker(d)) { throw .notHalted(d) }
        try ensureRootTree(src, in: s)      // a VM session may have written the image since
        let staging = "\(domainDir(dst))/.root.clone", old = "\(domainDir(dst))/.root.old"
        try FileOps.removeTree(staging)
        try FileOps.removeTree(old)
        let hostLinked = rootIsHostLinked(src)
        do throws(DomainError) {
            // A host-linked root is linked again: a copy would copy the host's /usr.
            if hostLinked { try TemplateBuilder.linkTree(rootDir(src), to: staging) }
            else { try FileOps.copyTree(rootDir(src), to: staging) }
        } catch {
            try? FileOps.removeTree(staging)
            throw error
        }
        if FileOps.exists(rootDir(dst)) { try FileOps.rename(rootDir(dst), old) }
        try FileOps.rename(staging, rootDir(dst))
        let marker = "\(domainDir(dst))/root.hostlinked"
        if hostLinked { try FileOps.writeFile(marker, "") } else { _ = unlink(marker) }
        try rootTreeChanged(dst)           // its root image, if any, is now out of date
        try FileOps.removeTree(old)
    }
}
