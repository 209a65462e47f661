// A read-only share under Xen: no 9p, so the host directory becomes an ext4
// image (`mke2fs -d`) the guest mounts read-only; its label is the share's
// tag, which is how the guest kit's init finds it (`odyssey.share=TAG:PATH:ro`
// on the command line, a disk labelled TAG). Images are cached in
// `<state_dir>/share-images/TAG-<hash of the path>.img` beside a stamp of the
// directory (entries, sizes, mtimes, ctimes): unchanged, the image is reused;
// changed, a new one is built and renamed over it, so domains already
// running keep the one they mounted (the loop device holds its inode).
import Glibc
import PluginKit

enum ShareImage {
    typealias Failure = XenRunFiles.Failure

    /// The directory's stamp and the bytes its files take (4 KiB blocks).
    struct Survey: Equatable { var stamp: String; var bytes: UInt64; var entries: UInt64 }

    /// The image for `hostPath`, built or rebuilt when needed.
    static func current(tag: String, hostPath: String, cache: String) throws(Failure) -> String {
        try XenRunFiles.makeDirectory(cache)
        let base = "\(cache)/\(tag)-\(fnv1a(hostPath))"
        let image = base + ".img", stampFile = base + ".stamp"
        let survey = try survey(hostPath)
        let stamp = "\(hostPath)\n\(survey.stamp)\n"
        if access(image, R_OK) == 0, readSmall(stampFile) == stamp { return image }
        let tmp = "\(base).tmp\(getpid())"
        unlink(tmp)
        // Room for the data, an inode and a block per entry, and ext4's own metadata.
        let kib = (survey.bytes + survey.entries * 8192) / 1024 * 5 / 4 + 4096
        do throws(HelperProcess.Failure) {
            try HelperProcess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-b", "4096",
                           "-N", "\(survey.entries + 64)", "-L", tag, "-E", "root_owner=0:0", "-d", hostPath, tmp, "\(kib)k"],
                          hint: "install e2fsprogs")
        } catch {
            unlink(tmp)
            throw Failure(message: "share \(tag): building its image from \(hostPath): \(error.message)")
        }
        guard chmod(tmp, 0o644) == 0, rename(tmp, image) == 0 else {
            let why = XenRunFiles.errnoText(); unlink(tmp)
            throw Failure(message: "share \(tag): \(image): \(why)")
        }
        writeSmall(stampFile, stamp)
        return image
    }

    /// Walks `root` (not following symlinks): what changes the stamp, and the size the image needs.
    static func survey(_ root: String) throws(Failure) -> Survey {
        var st = stat()
        guard lstat(root, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(message: "share directory \(root): \(errno == 0 ? "not a directory" : XenRunFiles.errnoText())")
        }
        var hash: UInt64 = 0xcbf29ce484222325
        var bytes: UInt64 = 0, entries: UInt64 = 0
        func mix(_ v: UInt64) { for i in 0..<8 { hash = (hash ^ ((v >> (8 * UInt64(i))) & 0xff)) &* 0x100000001b3 } }
        var pending = [root]
        while let dir = pending.popLast() {
            guard let d = opendir(dir) else { throw Failure(message: "share directory \(dir): \(XenRunFiles.errnoText())") }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let path = dir + "/" + name
                guard lstat(path, &st) == 0 else { continue }  // gone since readdir
                entries += 1
                bytes += (UInt64(st.st_size) + 4095) / 4096 * 4096
                for b in path.utf8 { mix(UInt64(b)) }
                mix(UInt64(st.st_size)); mix(UInt64(st.st_mode))
                mix(UInt64(st.st_mtim.tv_sec)); mix(UInt64(st.st_mtim.tv_nsec))
                mix(UInt64(st.st_ctim.tv_sec)); mix(UInt64(st.st_ctim.tv_nsec))
                if st.st_mode & S_IFMT == S_IFDIR { pending.append(path) }
            }
        }
        return Survey(stamp: "\(entries) \(bytes) \(String(hash, radix: 16))", bytes: bytes, entries: entries)
    }

    static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return String(h, radix: 16)
    }

    static func readSmall(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 8192)
        let n = read(fd, &buf, buf.count)
        return n >= 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }

    static func writeSmall(_ path: String, _ text: String) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let bytes = Array(text.utf8)
        let ok = write(fd, bytes, bytes.count) == bytes.count
        close(fd)
        if ok { rename(tmp, path) } else { unlink(tmp) }
    }
}
