// The files behind a start's disks. Xen attaches each through blkback on a
// loop device that vmm-xen's hotplug script (BlockScript) sets up and
// detaches when the domain is destroyed; this file only makes the images:
//  - root (a snapshot): a sparse copy of the template's image in the run
//    directory, made at each start and removed at the domain's death. Only
//    the base's data extents are copied (SEEK_DATA/ODY_SEEK_HOLE), and
//    copy_file_range shares them instead where the filesystem can (XFS,
//    btrfs reflinks). The trade-off against dm-snapshot (instant, any size):
//    a start costs a read of the template's used blocks (ext4/tmpfs), and
//    needs device-mapper and two loop devices per root (more hotplug
//    work); qcow2 needs qdisk (QEMU in dom0), which
//    this dom0 does not have.
//  - volatile: a fresh sparse file (the init writes the swap header).
//  - a share: a read-only ext4 image of the host directory (`mke2fs -d`),
//    labelled with the share's tag, cached under state_dir and rebuilt when
//    anything in the directory changed (count, sizes, mtimes, ctimes).
import CXenlight
import Glibc

enum XenRunFiles {
    struct Failure: Error { let message: String }

    /// A disk as libxl gets it.
    struct Attached: Equatable { let vdev: String; let path: String; let readOnly: Bool }

    static func perStartFile(_ runDir: String, _ vdev: String) -> String { "\(runDir)/xen-\(vdev).img" }

    /// Makes every file the disks need; on a failure removes what it made.
    static func prepare(_ disks: [XenGuestLayout.Disk], runDir: String, shareCache: String) throws(Failure) -> [Attached] {
        if !runDir.isEmpty { try makeDirectory(runDir) }
        var out: [Attached] = []
        do throws(Failure) {
            for d in disks {
                switch d.source {
                case .image(let path, let ro):
                    guard access(path, ro ? R_OK : R_OK | W_OK) == 0 else { throw Failure(message: "\(d.vdev) image \(path): \(errnoText())") }
                    out.append(Attached(vdev: d.vdev, path: path, readOnly: ro))
                case .snapshot(let base):
                    let file = perStartFile(runDir, d.vdev)
                    try sparseCopy(from: base, to: file)
                    out.append(Attached(vdev: d.vdev, path: file, readOnly: false))
                case .scratch(let size):
                    let file = perStartFile(runDir, d.vdev)
                    unlink(file)
                    let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                    guard fd >= 0 else { throw Failure(message: "scratch disk \(file): \(errnoText())") }
                    defer { close(fd) }
                    guard ftruncate(fd, off_t(size) * 1024 * 1024) == 0 else { throw Failure(message: "scratch disk \(file) (\(size) MiB): \(errnoText())") }
                    out.append(Attached(vdev: d.vdev, path: file, readOnly: false))
                case .share(let tag, let host):
                    out.append(Attached(vdev: d.vdev, path: try ShareImage.current(tag: tag, hostPath: host, cache: shareCache), readOnly: true))
                }
            }
        } catch {
            remove(disks, runDir: runDir)
            throw error
        }
        return out
    }

    /// Removes the per-start files (the snapshot's copy, the scratch disk).
    /// A loop device still holding one keeps its data until it is detached.
    static func remove(_ disks: [XenGuestLayout.Disk], runDir: String) {
        guard runDir.hasPrefix("/") else { return }
        for d in disks {
            switch d.source {
            case .snapshot, .scratch: unlink(perStartFile(runDir, d.vdev))
            case .image, .share: break
            }
        }
    }

    /// Copies `base` to `file` (new, 0600) extent by extent: holes stay holes.
    static func sparseCopy(from base: String, to file: String) throws(Failure) {
        let src = open(base, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw Failure(message: "snapshot base \(base): \(errnoText())") }
        defer { close(src) }
        var st = stat()
        guard fstat(src, &st) == 0 else { throw Failure(message: "snapshot base \(base): \(errnoText())") }
        unlink(file)  // a layer left by a crash: this start begins from the base again
        let dst = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw Failure(message: "snapshot layer \(file): \(errnoText())") }
        defer { close(dst) }
        guard ftruncate(dst, st.st_size) == 0 else { throw Failure(message: "snapshot layer \(file): \(errnoText())") }
        var pos: off_t = 0
        while pos < st.st_size {
            let data = lseek(src, pos, ODY_SEEK_DATA)
            if data < 0 { if errno == ENXIO { break }; throw Failure(message: "snapshot base \(base): SEEK_DATA: \(errnoText())") }
            var hole = lseek(src, data, ODY_SEEK_HOLE)
            if hole < 0 { hole = st.st_size }
            var inOff = Int64(data), outOff = Int64(data)
            while inOff < Int64(hole) {
                let n = ody_copy_file_range(src, &inOff, dst, &outOff, UInt(min(Int64(hole) - inOff, 1 << 30)))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Failure(message: "copying \(base) to \(file): \(n == 0 ? "short read" : errnoText())") }
            }
            pos = hole
        }
    }

    static func makeDirectory(_ path: String) throws(Failure) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw Failure(message: "\(path) exists and is not a directory") }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try makeDirectory(String(path[..<slash])) }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw Failure(message: "cannot make \(path): \(errnoText())") }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
