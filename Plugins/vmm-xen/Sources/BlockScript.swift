// vmm-xen's block hotplug script: libxl runs it (argv "add"/"remove", the
// backend's xenstore path in XENBUS_PATH) for every disk. It puts the image
// on a loop device (read-only with `losetup -r` for mode r), tells blkback
// its major:minor, and detaches it at remove.
//
// Why not Xen's own /etc/xen/scripts/block: it does the same in bash with a
// global lock and a sharing check that walks every backend in xenstore; in
// dom0 under TCG that is tens of seconds a disk, serialized, and libxl kills
// it at its hotplug timeout (measured: five disks, every one timed out). This
// one is four short commands and takes no lock (losetup -f --show is atomic).
// The text is fixed: nothing of a domain is ever put into it.
import Glibc

enum BlockScript {
    static let text = """
    #!/bin/sh
    # Written by vmm-xen (Odyssey) at every open; edits are overwritten.
    # libxl runs it with add/remove and XENBUS_PATH (a vbd backend in xenstore).
    export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
    case $1 in
    add)
        file=$(xenstore-read "$XENBUS_PATH/params") || exit 1
        mode=$(xenstore-read "$XENBUS_PATH/mode") || exit 1
        if [ "$mode" = r ]; then dev=$(losetup -r -f --show "$file") || exit 1
        else dev=$(losetup -f --show "$file") || exit 1; fi
        number=$(stat -L -c %t:%T "$dev") || { losetup -d "$dev"; exit 1; }
        xenstore-write "$XENBUS_PATH/physical-device-path" "$dev" "$XENBUS_PATH/physical-device" "$number" ||
            { losetup -d "$dev"; exit 1; }
        ;;
    remove)
        # Busy (blkback still closing): the kernel detaches it at the last close.
        dev=$(xenstore-read "$XENBUS_PATH/physical-device-path" 2>/dev/null) || exit 0
        losetup -d "$dev" 2>/dev/null
        exit 0
        ;;
    esac

    """

    /// Writes the script to `<state_dir>/block-loop` (0755) and returns its path.
    static func install(in directory: String) -> Result<String, XenRunFiles.Failure> {
        let path = directory + "/block-loop", tmp = path + ".tmp"
        if ShareImage.readSmall(path) == text { return .success(path) }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { return .failure(.init(message: "\(tmp): \(XenRunFiles.errnoText())")) }
        let bytes = Array(text.utf8)
        let ok = write(fd, bytes, bytes.count) == bytes.count && fchmod(fd, 0o755) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let why = XenRunFiles.errnoText(); unlink(tmp)
            return .failure(.init(message: "\(path): \(why)"))
        }
        return .success(path)
    }
}
