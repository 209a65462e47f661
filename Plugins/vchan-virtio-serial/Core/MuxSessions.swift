// The host's mux sessions, one per domain, made on the first server_init for
// that domain and stopped when its last channel closes. What a session
// connects to (QEMU's chardev socket, an accepted vsock connection) is the
// plugin's: `makeTransport`. The domain is always the host's choice (the
// endpoint's remote name); nothing the guest says names it.
#if canImport(Glibc)
import Glibc
#endif
import StreamMux

public final class MuxSessions: @unchecked Sendable {
    private let monitor = MuxMonitor()
    private var table: [String: (session: MuxSession, channels: Int)] = [:]
    private let makeTransport: (String) throws(MuxError) -> MuxTransport
    private let log: @Sendable (String) -> Void

    public init(log: @escaping @Sendable (String) -> Void,
                makeTransport: @escaping (String) throws(MuxError) -> MuxTransport) {
        self.log = log
        self.makeTransport = makeTransport
    }

    /// A listener on `port` in `domain`'s session, as a libvchan channel.
    public func serve(domain: String, port: UInt32) throws(MuxError) -> MuxChannel {
        let made: Result<MuxSession, MuxError> = monitor.locked {
            if let e = table[domain] { table[domain] = (e.session, e.channels + 1); return .success(e.session) }
            do throws(MuxError) {
                let s = try MuxSession(role: .host, transport: try makeTransport(domain), log: log)
                table[domain] = (s, 1)
                return .success(s)
            } catch { return .failure(error) }
        }
        let session = try made.get()
        do {
            let l = try session.listen(port: port)
            return MuxChannel(listener: l) { [weak self] in self?.release(domain, session) }
        } catch {
            release(domain, session)
            throw error
        }
    }

    private func release(_ domain: String, _ session: MuxSession) {
        let stop: Bool = monitor.locked {
            guard let e = table[domain], e.session === session else { return false }
            if e.channels > 1 { table[domain] = (e.session, e.channels - 1); return false }
            table[domain] = nil
            return true
        }
        if stop { session.stop(wait: false) }
    }

    /// The live session of `domain` (tests, diagnostics).
    public func session(_ domain: String) -> MuxSession? { monitor.locked { table[domain]?.session } }

    public func stopAll() {
        let all: [MuxSession] = monitor.locked { defer { table = [:] }; return table.values.map(\.session) }
        for s in all { s.stop(wait: true) }
    }
}
