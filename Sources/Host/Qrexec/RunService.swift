// `ody run`: like Qubes' qvm-run, which talks to qrexec directly rather than
// through the Admin API. The daemon starts the domain if needed, opens a
// session with its agent, and hands the session's data channel to the caller
// with SCM_RIGHTS; from then on stdin/stdout/stderr/exit flow between `ody`
// and the agent directly, the daemon out of the data path.
//
// Socket: <state_dir>/qrexec.sock, mode 0660 like the admin socket; only
// root or members of admin_socket_group may connect (checked with
// SO_PEERCRED). Request (admin wire framing):
//   odyssey.Run+<user> dom0 name <domain>\0<command>      (command for sh -c)
//   odyssey.JustExec+<user> dom0 name <domain>\0<command> (stdio to /dev/null)
// <user> DEFAULT is the domain's default_user (Qubes' qrexec-client form).
// <domain> may be @dispvm or @dispvm:TEMPLATE (with Run only): a fresh or
// preloaded disposable that is destroyed when the command ends.
// Reply: "0\0" with the data channel fd attached (Run), "0\0" (JustExec), or
// an admin error reply.
import CSupport
import Logging
import Qrexec
import VchanSocketCore
#if canImport(Glibc)
import Glibc
#endif

public final class RunService: @unchecked Sendable {
    let path: String
    let runtime: DomainRuntime
    let disposables: Disposables
    let allowedGID: gid_t?
    let logger: Logger
    private var listenFD: Int32 = -1

    public init(path: String, runtime: DomainRuntime, disposables: Disposables, allowedGroup: String?,
                logger: Logger) throws(OdysseyError) {
        self.path = path
        self.runtime = runtime
        self.disposables = disposables
        self.logger = logger
        if let g = allowedGroup {
            guard let gr = getgrnam(g) else { throw OdysseyError(.config, "admin_socket_group: no such group '\(g)'") }
            allowedGID = gr.pointee.gr_gid
        } else {
            allowedGID = nil
        }
    }

    public func start() throws(OdysseyError) {
        listenFD = try UnixSocket.listen(path: path, mode: 0o660)
        if let gid = allowedGID { _ = chown(path, uid_t.max, gid) }
        let fd = listenFD
        Threads.detach { [self] in
            while let conn = UnixSocket.accept(fd) { Threads.detach { [self] in serve(conn) } }
        }
    }

    public func stop() {
        if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)); Sys.close(listenFD); listenFD = -1 }
        unlink(path)
    }

    /// Root, or a member of admin_socket_group (the kernel says who the peer is).
    private func allowed(_ fd: Int32) -> Bool {
        var uid: uid_t = 0, gid: gid_t = 0, pid: pid_t = 0
        guard ody_peer_cred(fd, &pid, &uid, &gid) == 0 else { return false }
        if uid == 0 { return true }
        guard let group = allowedGID else { return false }
        return gid == group || UserName.isMember(uid: uid, of: group)
    }

    private func serve(_ fd: Int32) {
        defer { Sys.close(fd) }
        let reply: AdminResponse
        do throws(OdysseyError) {
            guard allowed(fd) else { throw OdysseyError(.permission, "") }
            let untrusted = try Sys.readAll(fd, limit: AdminRequest.maxSize, what: "run request")
            let request: AdminRequest
            do { request = try AdminRequest.decode(untrusted) } catch { throw OdysseyError(.protocolError, error.message) }
            guard request.method == "odyssey.Run" || request.method == "odyssey.JustExec" else {
                throw OdysseyError(.protocolError, "unknown method \(request.method)")
            }
            guard let command = String(validating: request.payload, as: UTF8.self), !command.isEmpty else {
                throw OdysseyError(.invalid, "the command must be non-empty UTF-8")
            }
            let asked = request.argument.isEmpty ? "user" : request.argument
            guard UserName.isValid(asked) else { throw OdysseyError(.invalid, "invalid user name '\(asked)'") }
            if request.dest == "@dispvm" || request.dest.hasPrefix("@dispvm:") {
                guard request.method == "odyssey.Run" else {
                    throw OdysseyError(.invalid, "a disposable needs --pass-io: it is destroyed when the command ends")
                }
                let template = request.dest == "@dispvm" ? nil : String(request.dest.dropFirst("@dispvm:".count))
                try runInDisposable(template: template, user: asked, command: command, reply: fd)
                return
            }
            let domain = request.dest
            if runtime.powerState(domain) == .halted { try runtime.start(domain) }   // as qvm-run does
            let link = try runtime.link(domain)
            let user = resolve(asked, in: domain)
            if request.method == "odyssey.JustExec" {
                try justExec(link, user: user, command: command)
                try Sys.writeAll(fd, AdminResponse.success([]).encoded(), what: "run reply")
                return
            }
            let call = try CallerChannel.exec(link, user: user, command: command)
            defer { call.close() }
            do { try FDPassing.send(fd, Array("0\0".utf8), fds: [call.fd]) } catch {
                throw OdysseyError(.io, "passing the data channel to the caller: \(error)")
            }
            return
        } catch {
            reply = .failure(error.adminError)
        }
        try? Sys.writeAll(fd, reply.encoded(), what: "run reply")
    }
}

extension RunService {
    /// Qubes' `DEFAULT` user (what qrexec-client callers send) is the
    /// domain's default_user, as qrexec-daemon substitutes it.
    func resolve(_ user: String, in domain: String) -> String {
        guard user == "DEFAULT" else { return user }
        let u = try? runtime.store.snapshot().property("default_user", of: domain).value
        return u.flatMap { $0.isEmpty ? nil : $0 } ?? "user"
    }

    /// MSG_JUST_EXEC: the agent starts the command with stdio on /dev/null
    /// and answers 0 once it runs. The agent still waits for the caller's
    /// HELLO on the data channel, so the daemon plays the caller here (closing
    /// the channel at once, as before, meant nothing ever ran).
    func justExec(_ link: AgentLink, user: String, command: String) throws(OdysseyError) {
        let session = try link.exec(user: user, command: command, justExec: true)
        defer { session.close() }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw Sys.error("open /dev/null") }
        defer { Sys.close(null) }
        let status = try session.run(stdin: nil, stdout: null, stderr: null)
        guard status == 0 else { throw OdysseyError(.io, "\(link.domain): the command could not be started (status \(status))") }
    }

    /// A fresh (or preloaded) disposable runs the one command and is
    /// destroyed when its session ends, or if anything fails on the way.
    func runInDisposable(template: String?, user: String, command: String, reply fd: Int32) throws(OdysseyError) {
        let name = try disposables.acquire(template: template, caller: nil)
        let link: AgentLink, call: CallerChannel
        do throws(OdysseyError) {
            link = try runtime.link(name)
            call = try CallerChannel.exec(link, user: resolve(user, in: name), command: command)
        } catch {
            disposables.destroy(name)
            throw error
        }
        defer { call.close() }
        // From here the call's end (the agent's CONNECTION_TERMINATED, or a
        // link closing) destroys the disposable, whatever the caller does.
        disposables.destroyAfterCall(name, target: link, port: call.port, caller: nil)
        do { try FDPassing.send(fd, Array("0\0".utf8), fds: [call.fd]) } catch {
            throw OdysseyError(.io, "passing the data channel to the caller: \(error)")
        }
    }
}

/// The caller's side (used by `ody run`).
public enum RunClient {
    /// Runs `command` in `domain`; returns its exit status. `passIO` false:
    /// started detached with stdio to /dev/null (qvm-run without --pass-io).
    public static func run(socket: String, domain: String, user: String, command: String,
                           passIO: Bool) throws(AdminClientError) -> Int32 {
        guard let channel = try request(socket: socket, domain: domain, user: user, command: command, passIO: passIO) else { return 0 }
        defer { Sys.close(channel) }
        do { return try DataClient.run(channel: channel, stdin: 0, stdout: 1, stderr: 2) } catch {
            throw .unreachable("qrexec session with \(domain) failed: \(error)")
        }
    }

    /// Asks the daemon to start `command`; the data channel (passIO), ready
    /// for the caller's HELLO, or nil once a detached command started.
    public static func request(socket: String, domain: String, user: String, command: String,
                               passIO: Bool) throws(AdminClientError) -> Int32? {
        let fd: Int32
        do { fd = try UnixSocket.connect(path: socket) } catch {
            throw .unreachable("cannot reach odysseyd at \(socket): \(error.message) (is it running?)")
        }
        defer { Sys.close(fd) }
        let req = AdminRequest(method: passIO ? "odyssey.Run" : "odyssey.JustExec", argument: user, dest: domain,
                               payload: Array(command.utf8))
        do { try Sys.writeAll(fd, req.encoded(), what: "run request") } catch { throw .unreachable(error.description) }
        shutdown(fd, Int32(SHUT_WR))
        var fds: [Int32] = []
        let head: [UInt8]
        do { head = try FDPassing.recvExact(fd, 2, fds: &fds) } catch { throw .unreachable("odysseyd closed the connection: \(error)") }
        if head == Array("0\0".utf8) {
            for f in fds.dropFirst() { Sys.close(f) }
            guard passIO else { fds.first.map { Sys.close($0) }; return nil }
            guard let channel = fds.first else { throw .unreachable("odysseyd sent no data channel") }
            return channel
        }
        for f in fds { Sys.close(f) }
        let rest = (try? Sys.readAll(fd, limit: 65536, what: "run reply")) ?? []
        switch try? AdminResponse.decode(head + rest) {
        case .failure(let e)?: throw .remote(e)
        default: throw .unreachable("malformed reply from odysseyd")
        }
    }
}

enum UserName {
    /// POSIX-ish user names: what a domain's /etc/passwd can hold; never a path or option.
    static func isValid(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 32, u[0] != UInt8(ascii: "-") else { return false }
        return u.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f || $0 == 0x2d || $0 == 0x2e }
    }

    static func isMember(uid: uid_t, of gid: gid_t) -> Bool {
        guard let pw = getpwuid(uid) else { return false }
        var groups = [gid_t](repeating: 0, count: 256)
        var n: Int32 = 256
        guard getgrouplist(pw.pointee.pw_name, pw.pointee.pw_gid, &groups, &n) >= 0 else { return false }
        return groups.prefix(Int(n)).contains(gid)
    }
}
