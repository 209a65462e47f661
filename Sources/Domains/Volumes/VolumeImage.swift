// A volume with an enforced size: a sparse file holding an ext4 file system.
// The kernel enforces the size: a full volume fails writes with ENOSPC in the
// domain that owns it, and the host's disk only holds what was written.
//
// Made with mke2fs (exec with argv, never a shell): no journal (a crash of a
// domain cannot corrupt a volume the host unmounts cleanly at stop, and it
// saves 64 MiB per volume), lazy inode tables (the first mount finishes
// them in the background), no reserved blocks (the domain gets its size).
// Measured on this host (ext4 on virtio, loaded): mke2fs of a sparse 2 GiB
// image about 80 ms, 10 GiB about 130 ms; so images are made at creation or
// migration, never on the start path.
#if canImport(Glibc)
import Glibc
#endif

public enum VolumeImage {
    public static let mib: Int64 = 1 << 20
    /// Qubes' defaults: private 2 GiB, root 10 GiB.
    public static let defaultPrivateSize: Int64 = 2 << 30
    public static let defaultRootSize: Int64 = 10 << 30
    /// Smaller than this, ext4's own metadata leaves almost nothing.
    public static let minimumSize: Int64 = 64 << 20
    /// A bound on what an admin can ask for (1 TiB): the image is sparse, but
    /// a typo must not promise more than any host has.
    public static let maximumSize: Int64 = 1 << 40

    /// The image's size in bytes (its apparent size), nil if missing.
    public static func size(_ image: String) -> Int64? {
        FileOps.lstatOf(image).map { Int64($0.st_size) }
    }

    /// Bytes the image takes on the host disk.
    public static func allocated(_ image: String) -> Int64 {
        FileOps.lstatOf(image).map { Int64($0.st_blocks) * 512 } ?? 0
    }

    static func checkSize(_ bytes: Int64, _ what: String) throws(DomainError) {
        guard bytes % mib == 0, bytes >= minimumSize, bytes <= maximumSize else {
            throw .value("\(what): size \(bytes) must be a multiple of 1 MiB between \(minimumSize) and \(maximumSize)")
        }
    }

    /// A new sparse image of `bytes` with an ext4 (mode 0600: it holds a
    /// domain's data), empty or holding a copy of the files under `populateFrom`.
    public static func create(_ image: String, bytes: Int64, populateFrom: String? = nil) throws(DomainError) {
        try checkSize(bytes, image)
        let fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileOps.fail("create", image) }
        let ok = ftruncate(fd, off_t(bytes)) == 0
        let e = errno
        close(fd)
        guard ok else { unlink(image); throw FileOps.fail("ftruncate", image, e) }
        do throws(DomainError) {
            try Spawn.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0"]
                          + (populateFrom.map { ["-d", $0] } ?? [])
                          + ["-E", "lazy_itable_init=1,nodiscard,root_owner=0:0", "--", image])
        } catch {
            unlink(image)
            throw error
        }
    }

    /// Grows the image to `bytes`. Shrinking is refused (as qubesd refuses
    /// it: it would cut a file system that does not expect it). When the
    /// image is mounted (`device` given), the file system grows online if the
    /// kernel lets us (it needs CAP_SYS_RESOURCE); otherwise it grows at the
    /// next open (growFileSystemIfNeeded). `fileSystemLater`: a VM holds the
    /// image; only the file grows now, its file system at the next open or start.
    /// Returns whether the file system grew now.
    @discardableResult
    public static func grow(_ image: String, to bytes: Int64, mountedOn device: String?,
                            fileSystemLater: Bool = false) throws(DomainError) -> Bool {
        guard let current = size(image) else { throw .storage("\(image): no such volume image") }
        guard bytes >= current else {     // qubesd's words and exception (StoragePoolException)
            throw .storage("For your own safety, shrinking of \(image) is disabled (\(bytes) < \(current))")
        }
        try checkSize(bytes, image)
        if bytes > current {
            let fd = open(image, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw FileOps.fail("open", image) }
            let ok = ftruncate(fd, off_t(bytes)) == 0
            let e = errno
            close(fd)
            guard ok else { throw FileOps.fail("ftruncate", image, e) }
        }
        if fileSystemLater { return false }
        guard let device else { try growFileSystemIfNeeded(image); return true }
        try LoopDevice.refreshCapacity(of: device)
        return (try? Spawn.run(["resize2fs", "--", device])) != nil
    }

    /// Offline: makes the file system fill its image (after a grow that
    /// could not be applied online). resize2fs wants a checked file system.
    static func growFileSystemIfNeeded(_ image: String) throws(DomainError) {
        guard let fs = fileSystemBytes(image), let size = size(image), fs < size else { return }
        try Spawn.run(["e2fsck", "-f", "-p", "--", image])
        try Spawn.run(["resize2fs", "--", image])
    }

    /// The ext4 file system's size, from its superblock (1024 bytes in):
    /// s_blocks_count_lo at 4, s_log_block_size at 24, s_blocks_count_hi at 0x150.
    static func fileSystemBytes(_ image: String) -> Int64? {
        let fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var sb = [UInt8](repeating: 0, count: 1024)
        guard sb.withUnsafeMutableBytes({ pread(fd, $0.baseAddress!, 1024, 1024) }) == 1024 else { return nil }
        func u32(_ o: Int) -> UInt64 { sb[o..<o + 4].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        guard sb[0x38] == 0x53, sb[0x39] == 0xEF else { return nil }        // the ext magic
        let blocks = u32(0x150) << 32 | u32(4)
        let logBlock = u32(24)
        guard logBlock < 8 else { return nil }
        return Int64(blocks << (10 + logBlock))
    }
}
