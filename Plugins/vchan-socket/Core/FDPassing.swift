// Passing descriptors over a socket vchan (ODY_VCHAN_CAP_FD_PASSING).
//
// Issue 5's direct data channels: the host makes a socketpair for a call
// between domains A and B and sends one end to each agent with SCM_RIGHTS,
// attached to the MSG_EXEC_CMDLINE / MSG_SERVICE_CONNECT that announces the
// call. An agent that receives a descriptor with such a message uses it as
// the data channel instead of connecting by path; the host is never in the
// data path. `ody run` gets the data channel of a session the same way over
// the admin socket.
#if canImport(Glibc)
import Glibc
#endif
import CVchanSocket

public enum FDPassing {
    /// Sends all of `bytes`, with `fds` attached to the first chunk.
    public static func send(_ sock: Int32, _ bytes: [UInt8], fds: [Int32]) throws(VchanError) {
        precondition(!bytes.isEmpty, "SCM_RIGHTS needs at least one data byte")
        var off = 0
        var attach = fds
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                attach.withUnsafeBufferPointer { f in
                    vs_send_fds(sock, raw.baseAddress! + off, raw.count - off, f.baseAddress, Int32(f.count), 0)
                }
            }
            if n > 0 { off += n; attach = []; continue }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN { var p = pollfd(fd: sock, events: Int16(POLLOUT), revents: 0); _ = poll(&p, 1, -1); continue }
            if e == EPIPE || e == ECONNRESET { throw .closed }
            throw .io("sendmsg", errno: e)
        }
    }

    /// Reads exactly `count` bytes, collecting any descriptors that arrive
    /// with them (close-on-exec). `.closed` at EOF before the first byte.
    public static func recvExact(_ sock: Int32, _ count: Int, fds: inout [Int32]) throws(VchanError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        var buf = [Int32](repeating: -1, count: 16)
        while got < count {
            var nfds: Int32 = 0
            let n = out.withUnsafeMutableBytes { raw in
                buf.withUnsafeMutableBufferPointer { vs_recv_fds(sock, raw.baseAddress! + got, count - got, $0.baseAddress, 16, &nfds, 0) }
            }
            if nfds > 0 { fds += buf[0..<Int(nfds)] }
            if n > 0 { got += n; continue }
            if n == 0 { throw .closed }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN { var p = pollfd(fd: sock, events: Int16(POLLIN), revents: 0); _ = poll(&p, 1, -1); continue }
            if e == ECONNRESET { throw .closed }
            throw .io("recvmsg", errno: e)
        }
        return out
    }
}
