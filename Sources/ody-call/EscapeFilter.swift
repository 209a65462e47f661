// Terminal safety for what a remote service prints (Qubes' qrexec-client-vm
// filters the same way): on the way to a terminal, control characters other
// than tab, newline and carriage return (ESC, BEL, DEL, ...) become '_', so a
// service cannot move the cursor, retitle the window or inject keystrokes
// through terminal escape sequences. Bytes >= 0x80 pass (UTF-8 text).
//
// DataClient writes to a pipe; one thread copies it to the real descriptor,
// filtered. Without filtering the real descriptor is used directly.
#if canImport(Glibc)
import Glibc
#endif
import Qrexec

struct EscapeFilter {
    /// Where DataClient should write.
    let fd: Int32
    private let thread: pthread_t?

    @inline(__always)
    static func safe(_ b: UInt8) -> UInt8 {
        (b < 0x20 && b != 0x09 && b != 0x0a && b != 0x0d) || b == 0x7f ? UInt8(ascii: "_") : b
    }

    static func start(for target: Int32, _ enabled: Bool) -> EscapeFilter {
        guard enabled else { return EscapeFilter(fd: target, thread: nil) }
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { return EscapeFilter(fd: target, thread: nil) }
        for f in p { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        final class Box { let r: Int32, w: Int32; init(_ r: Int32, _ w: Int32) { self.r = r; self.w = w } }
        let box = Unmanaged.passRetained(Box(p[0], target)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            var buf = [UInt8](repeating: 0, count: 65536)
            var ok = true
            while true {
                let n = buf.withUnsafeMutableBytes { read(b.r, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                for i in 0..<n { buf[i] = EscapeFilter.safe(buf[i]) }
                // After a write error keep draining, so the writer never blocks.
                if ok { ok = (try? FD.writeAll(b.w, Array(buf[0..<n]))) != nil }
            }
            close(b.r)
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            close(p[0]); close(p[1])
            return EscapeFilter(fd: target, thread: nil)
        }
        return EscapeFilter(fd: p[1], thread: tid)
    }

    /// Ends the copy (EOF on the pipe) and waits until everything is written.
    func finish() {
        guard let thread else { return }
        close(fd)
        pthread_join(thread, nil)
    }
}
