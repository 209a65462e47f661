// The client side of LocalCall (ody-call, and ody inside a domain): ask the
// agent for a call and get back the data channel, a refusal or a failure.
#if canImport(Glibc)
import Glibc
#endif
import VchanSocketCore

extension LocalCall {
    public enum Opened: Sendable {
        /// The data channel (a stream socket, the caller's to close).
        case channel(Int32)
        /// Refused by policy (126).
        case refused
        /// The call could not be made (125); the message says why.
        case failed(String)
    }

    /// Asks the agent at `socketPath` for `service` on `target`.
    public static func open(socketPath: String, target: String, service: String) -> Opened {
        let request: [UInt8]
        do { request = try LocalCall.request(target: target, service: service) } catch { return .failed("\(error)") }
        let sock: Int32
        switch connectAgent(socketPath) {
        case .success(let fd): sock = fd
        case .failure(let m): return .failed(m.message)
        }
        defer { close(sock) }
        do { try FD.writeAll(sock, request) } catch { return .failed("sending the request to the agent: \(error)") }
        var fds: [Int32] = []
        let reply: LocalCall.Reply
        do { reply = try readReply(sock, fds: &fds) } catch {
            for f in fds { close(f) }
            return .failed("bad answer from the agent: \(error)")
        }
        switch reply {
        case .refused:
            for f in fds { close(f) }
            return .refused
        case .failed(let why):
            for f in fds { close(f) }
            return .failed("the call failed: \(why)")
        case .connect:
            guard fds.count == 1 else {
                for f in fds { close(f) }
                return .failed("the agent allowed the call but passed \(fds.count) descriptors instead of the data channel")
            }
            guard isStreamSocket(fds[0]) else {
                close(fds[0])
                return .failed("the agent passed a data channel that is not a stream socket")
            }
            return .channel(fds[0])
        }
    }

    public struct Message: Error { public let message: String }

    static func connectAgent(_ path: String) -> Result<Int32, Message> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Message(message: "socket: \(String(cString: strerror(errno)))")) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            return .failure(Message(message: "socket path too long: \(path)"))
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        } while rc != 0 && errno == EINTR
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            return .failure(Message(message: "cannot reach the agent at \(path): \(e) (is odyssey-agent running in this domain?)"))
        }
        return .success(fd)
    }

    /// One reply: header admitted before the body is read; descriptors that
    /// arrive with it are collected (and all accounted for by the caller).
    static func readReply(_ sock: Int32, fds: inout [Int32]) throws(QrexecError) -> LocalCall.Reply {
        let untrusted_head: [UInt8]
        do { untrusted_head = try FDPassing.recvExact(sock, MsgHeader.size, fds: &fds) } catch {
            if error == .closed { throw .io("the agent closed the connection without an answer", errno: 0) }
            throw .io("\(error)", errno: 0)
        }
        let h = MsgHeader(untrusted_bytes: untrusted_head)
        let n = try LocalCall.admitReply(h)
        var untrusted_body: [UInt8] = []
        if n > 0 {
            do { untrusted_body = try FDPassing.recvExact(sock, n, fds: &fds) } catch {
                throw .truncated(expected: n, got: 0)
            }
        }
        return try LocalCall.validateReply(h, untrusted_body: untrusted_body)
    }

    static func isStreamSocket(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue)
    }
}

extension VMExecArgument {
    /// The argument (without its leading '+') that `decode` turns back into `argv`.
    public static func encode(_ argv: [String]) -> String {
        argv.map { word in
            var out = ""
            for c in word.utf8 {
                let plain = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x5f
                if plain { out.unicodeScalars.append(Unicode.Scalar(c)) }
                else if c == 0x2d { out += "--" }
                else {
                    let hex = Array("0123456789ABCDEF".utf8)
                    out += "-" + String(decoding: [hex[Int(c >> 4)], hex[Int(c & 15)]], as: UTF8.self)
                }
            }
            return out
        }.joined(separator: "+")
    }
}
