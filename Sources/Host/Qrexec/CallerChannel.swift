// A command's data channel for a caller outside the daemon (`ody run`, which
// gets the descriptor with SCM_RIGHTS and talks to the agent directly).
//
// Where the domain's vchan carries descriptors (socket vchan, the VM mux),
// the channel is a socketpair made here: one end rides on the
// MSG_EXEC_CMDLINE itself, the other goes to the caller at once. Nothing
// waits for the agent to connect back: in a VM that saves the stream's
// OPEN/ACCEPT round trip and the guest's dial (its thread hand-offs cost
// milliseconds under TCG), and the caller's HELLO is on its way while the
// agent still spawns the command. Other vchans: the agent connects the port
// as before and the caller gets the host's end once it did.
#if canImport(Qrexec)
import Qrexec
#if canImport(Glibc)
import Glibc
#endif

public final class CallerChannel: @unchecked Sendable {
    /// The caller's end (a stream socket with an fd-passing vchan).
    public let fd: Int32
    /// The session's port: its id until the agent's MSG_CONNECTION_TERMINATED.
    public let port: UInt32
    private let session: ExecSession?
    private var closed = false

    private init(fd: Int32, port: UInt32, session: ExecSession?) {
        self.fd = fd; self.port = port; self.session = session
    }

    deinit { close() }

    /// Starts `command` as `user` in the link's domain; the channel is ready
    /// for the caller's HELLO when this returns.
    public static func exec(_ link: AgentLink, user: String, command: String) throws(OdysseyError) -> CallerChannel {
        if link.vchan.canPassFDs {
            var p: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &p) == 0 else {
                throw Sys.error("socketpair for a command's data channel")
            }
            defer { Sys.close(p[1]) }   // the agent's end travels with the message; ours is a copy
            do throws(OdysseyError) {
                let port = try link.exec(user: user, command: command, connectDomain: 0, passing: p[1])
                return CallerChannel(fd: p[0], port: port, session: nil)
            } catch {
                Sys.close(p[0])
                throw error
            }
        }
        let session = try link.exec(user: user, command: command)
        do throws(OdysseyError) {
            try session.waitConnected()
            return CallerChannel(fd: try session.dataFD(), port: session.port, session: session)
        } catch {
            session.close()
            throw error
        }
    }

    /// Closes the daemon's copy (the caller has its own by now).
    public func close() {
        guard !closed else { return }
        closed = true
        if let session { session.close() } else { Sys.close(fd) }
    }
}
#endif
