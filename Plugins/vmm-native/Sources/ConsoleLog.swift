// A domain's console log (<state_dir>/console/<name>.log: init's stdout and
// stderr) is capped, so a domain that writes to its console forever cannot
// fill the host's disk.
//
// init holds the file open (O_APPEND) for its whole life and domains outlive
// the host, so the host cannot put a pipe in between or rename the file away
// (init would keep writing to the renamed one). Instead the plugin checks the
// size about once a second and, above `console_log_max`, copies the newest
// `console_log_max` bytes to `<name>.log.1` (replacing the older one) and
// truncates the log to zero; init's O_APPEND writes continue at the new end.
// So the disk holds at most two caps per domain plus what one second of
// writing adds (a few lines: since PID 1 is out of the domain's reach, only
// the agent writes there). Bytes written between the copy and the truncate
// are lost: the log is a diagnostic, not a record.
import Glibc

enum ConsoleLog {
    static let defaultMax: Int64 = 1 << 20

    /// Rotates `path` if it is larger than `max` bytes (0: never).
    static func rotateIfNeeded(_ path: String, max: Int64) throws {
        guard max > 0 else { return }
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { if errno == ENOENT { return }; throw NativeError.sys("open console log \(path)") }
        defer { close(fd) }
        var st = stat()
        try Sys.check("stat \(path)") { fstat(fd, &st) }
        guard Int64(st.st_size) > max else { return }
        let keep = Int(max)
        var buf = [UInt8](repeating: 0, count: keep)
        var got = 0
        let from = Int64(st.st_size) - Int64(keep)
        while got < keep {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, keep - got, off_t(from) + off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw NativeError.sys("read \(path)") }
            if n == 0 { break }
            got += n
        }
        try Sys.writeAtomic(path + ".1", Array(buf[0..<got]), mode: 0o600, durable: false)
        try Sys.check("truncate \(path)") { ftruncate(fd, 0) }
    }
}
