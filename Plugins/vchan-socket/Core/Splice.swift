// The kernel calls behind the zero-copy data path of qrexec data channels
// (Qrexec's DataPath.swift): splice(2) moves pages between a pipe and the
// channel socket without copying them through user memory, which is what
// lets a 1 GiB transfer between two domains run at several GB/s instead of
// being bound by memcpy and syscall count.
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket

public enum Splice {
    public enum Outcome: Equatable {
        case moved(Int)
        /// EOF on the input (only possible when the input is not a pipe we own).
        case end
        /// EAGAIN: one side cannot take or give bytes now.
        case wouldBlock
        /// EPIPE/ECONNRESET: the reader of the output is gone.
        case peerGone
        /// Any other errno (EINVAL: this pair of files cannot be spliced).
        case failed(Int32)
    }

    /// One non-blocking splice of at most `max` bytes; EINTR is retried.
    public static func move(from input: Int32, to output: Int32, max: Int, more: Bool = false) -> Outcome {
        while true {
            let r = vs_splice(input, output, max, more ? 1 : 0)
            if r > 0 { return .moved(r) }
            if r == 0 { return .end }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case EPIPE, ECONNRESET: return .peerGone
            default: return .failed(e)
            }
        }
    }

    /// Bytes ready to read (FIONREAD: a pipe's content, a stream socket's
    /// receive queue); nil if the ioctl fails.
    public static func readable(_ fd: Int32) -> Int? {
        var n: Int32 = 0
        return vs_ioctl_int(fd, vs_fionread(), &n) == 0 ? Int(n) : nil
    }

    public static func isPipe(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
    }

    public static func isRegularFile(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// A pipe's capacity raised to `bytes` (64 KiB by default: a 1 GiB stream
    /// then costs 16384 wake-ups of each side). Best effort: a smaller limit
    /// (fs.pipe-max-size) keeps the old size.
    public static func growPipe(_ fd: Int32, to bytes: Int32 = 1 << 20) {
        _ = vs_set_pipe_size(fd, bytes)
    }

    /// A stream socket's send buffer raised to `bytes` (best effort: the
    /// kernel caps it at net.core.wmem_max). A Unix stream socket's sender
    /// may queue only this much: at the default ~208 KiB a 1 GiB transfer
    /// wakes the receiver every three 64 KiB messages.
    public static func growSendBuffer(_ fd: Int32, to bytes: Int32 = 4 << 20) {
        var v = bytes
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// A close-on-exec pipe of `size` bytes (best effort): (read end, write end), nil if pipe2 fails.
    public static func makePipe(size: Int32 = 1 << 20) -> (r: Int32, w: Int32)? {
        var p: [Int32] = [-1, -1]
        guard vs_pipe_cloexec(&p) == 0 else { return nil }
        growPipe(p[1], to: size)
        return (p[0], p[1])
    }

    /// O_NONBLOCK set on `fd`; returns the previous flags (for restore).
    @discardableResult
    public static func setNonBlocking(_ fd: Int32) -> Int32 {
        let old = fcntl(fd, F_GETFL)
        if old >= 0 && old & O_NONBLOCK == 0 { _ = fcntl(fd, F_SETFL, old | O_NONBLOCK) }
        return old
    }

    public static func restoreFlags(_ fd: Int32, _ flags: Int32) {
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags) }
    }
}
