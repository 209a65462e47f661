// Mounting a volume image through a loop device, with syscalls (no
// `mount -o loop`: one process less on the start path, and no tool's
// parsing of a path). The loop device is set up with LO_FLAGS_AUTOCLEAR, so
// the kernel frees it with the last reference to the mount: nothing to
// detach by hand, and nothing leaks if the daemon dies.
#if canImport(Glibc)
import Glibc
#endif

public enum LoopDevice {
    // <linux/loop.h>; Swift does not import these macros.
    private static let LOOP_CTL_GET_FREE: UInt = 0x4C82
    private static let LOOP_CONFIGURE: UInt = 0x4C0A
    private static let LOOP_SET_CAPACITY: UInt = 0x4C07
    private static let LO_FLAGS_AUTOCLEAR: UInt32 = 4
    /// struct loop_config: fd u32, block_size u32, struct loop_info64 (232 bytes), reserved u64[8].
    private static let configSize = 304
    private static let flagsOffset = 8 + 52     // loop_info64.lo_flags

    /// discard: blocks the domain frees are punched out of the sparse image,
    /// so the host's disk holds what the volume holds now, not its high-water mark.
    private static let mountOptions = "errors=remount-ro,discard"

    /// Mounts the ext4 image `image` at `target` (nosuid, nodev).
    static func mount(_ image: String, at target: String) throws(DomainError) {
        // A loop device already backed by this image (a domain still running
        // from before a daemon restart holds it) must be the one mounted: a
        // second device would mean a second ext4 instance on the same file.
        if let device = existingDevice(for: image) {
            guard Glibc.mount(device, target, "ext4", UInt(MS_NOSUID | MS_NODEV | MS_NOATIME), mountOptions) == 0 else {
                throw FileOps.fail("mount \(image) (\(device), already attached) at", target)
            }
            return
        }
        let imageFd = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard imageFd >= 0 else { throw FileOps.fail("open", image) }
        defer { close(imageFd) }
        let (device, loopFd) = try attach(imageFd, image: image)
        defer { close(loopFd) }     // AUTOCLEAR: the device goes with the mount
        guard Glibc.mount(device, target, "ext4", UInt(MS_NOSUID | MS_NODEV | MS_NOATIME), mountOptions) == 0 else {
            throw FileOps.fail("mount \(image) (\(device)) at", target)
        }
    }

    /// The loop device whose backing file is `image`, if one is attached.
    /// Every attach records its device beside the image (`IMAGE.loop`), so
    /// only that device is checked: scanning all of /sys/block cost about
    /// 9 ms per call on this host, twice per start.
    static func existingDevice(for image: String) -> String? {
        guard let recorded = try? FileOps.readFile(record(image), limit: 64),
              recorded.hasPrefix("loop"), recorded.dropFirst(4).allSatisfy(\.isNumber),
              let backing = try? FileOps.readFile("/sys/block/\(recorded)/loop/backing_file", limit: 8192) else { return nil }
        return (backing.hasSuffix("\n") ? backing.dropLast() == image : backing == image) ? "/dev/\(recorded)" : nil
    }

    /// Where the device an image was last attached to is noted.
    static func record(_ image: String) -> String { image + ".loop" }

    /// A free loop device bound to `imageFd`; retried when another process
    /// takes the same free device first.
    private static func attach(_ imageFd: Int32, image: String) throws(DomainError) -> (String, Int32) {
        let control = open("/dev/loop-control", O_RDWR | O_CLOEXEC)
        guard control >= 0 else { throw FileOps.fail("open", "/dev/loop-control") }
        defer { close(control) }
        for _ in 0..<16 {
            let n = ioctl(control, LOOP_CTL_GET_FREE)
            guard n >= 0 else { throw FileOps.fail("LOOP_CTL_GET_FREE for", image) }
            let device = "/dev/loop\(n)"
            let fd = open(device, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw FileOps.fail("open", device) }
            var config = [UInt8](repeating: 0, count: configSize)
            config.withUnsafeMutableBytes { b in
                b.storeBytes(of: UInt32(bitPattern: imageFd), toByteOffset: 0, as: UInt32.self)
                b.storeBytes(of: LO_FLAGS_AUTOCLEAR, toByteOffset: flagsOffset, as: UInt32.self)
            }
            let rc = config.withUnsafeMutableBytes { ioctl(fd, LOOP_CONFIGURE, $0.baseAddress!) }
            if rc == 0 {
                try? FileOps.writeFile(record(image), "loop\(n)")   // not synced: after a host crash no device is attached
                return (device, fd)
            }
            let e = errno
            close(fd)
            guard e == EBUSY else { throw FileOps.fail("LOOP_CONFIGURE \(device) for", image, e) }
        }
        throw .storage("no free loop device for \(image)")
    }

    /// Tells the loop device under the mount at `target` that its image grew.
    static func refreshCapacity(of device: String) throws(DomainError) {
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FileOps.fail("open", device) }
        defer { close(fd) }
        guard ioctl(fd, LOOP_SET_CAPACITY, 0) == 0 else { throw FileOps.fail("LOOP_SET_CAPACITY", device) }
    }

    /// The device mounted at exactly `target`, if any (from mountinfo).
    public static func mountedDevice(at target: String) -> String? {
        guard let text = try? FileOps.readFile("/proc/self/mountinfo") else { return nil }
        var found: String?
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9, FileOps.unescapeMountinfo(String(f[4])) == target,
                  let dash = f.firstIndex(of: "-"), dash + 2 < f.count else { continue }
            found = FileOps.unescapeMountinfo(String(f[dash + 2]))     // the last mount on top wins
        }
        return found
    }

    /// Unmounts `target` if something is mounted there. Lazy (MNT_DETACH):
    /// a domain that is gone may leave the last reference a moment longer.
    static func unmount(_ target: String) throws(DomainError) {
        // Until nothing is mounted there: EINVAL (not a mount point) or ENOENT.
        // No mountinfo parsing: this is on the stop path.
        while umount2(target, Int32(MNT_DETACH) | Int32(UMOUNT_NOFOLLOW)) == 0 {}
        guard errno == EINVAL || errno == ENOENT else { throw FileOps.fail("umount", target) }
    }

    /// Whether a file system is mounted on `dir` (its device differs from its
    /// parent's; a bind of the same file system is not ours to find here).
    static func isMountPoint(_ dir: String) -> Bool {
        guard let st = FileOps.lstatOf(dir), (st.st_mode & S_IFMT) == S_IFDIR,
              let parent = FileOps.lstatOf(dir + "/..") else { return false }
        return st.st_dev != parent.st_dev
    }
}
