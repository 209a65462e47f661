// The host's vsock listener: one port for all domains; each accepted
// connection goes to the session of the domain whose CID the kernel reports
// for the peer, or is closed (logged) if no domain has that CID.
import Glibc
import MuxVchanCore
import StreamMux

final class VsockAcceptor: @unchecked Sendable {
    let port: UInt32
    let cids: CIDTable
    let log: @Sendable (String) -> Void
    weak var sessions: MuxSessions?
    private let monitor = MuxMonitor()
    private var transports: [String: HandoffTransport] = [:]

    init(port: UInt32, cids: CIDTable, log: @escaping @Sendable (String) -> Void) {
        self.port = port; self.cids = cids; self.log = log
    }

    func transport(for domain: String) throws(MuxError) -> MuxTransport {
        if case .failure(let e) = cids.cid(for: domain) { throw e }
        return monitor.locked {
            if let t = transports[domain] { return t }
            let t = HandoffTransport(label: "vsock \(domain)")
            transports[domain] = t
            return t
        }
    }

    func start() -> MuxError? {
        let lfd: Int32
        switch Vsock.listen(port: port) {
        case .failure(let e): return e
        case .success(let fd): lfd = fd
        }
        listenFD = Int(lfd)
        var tid = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { raw in
            let me = Unmanaged<VsockAcceptor>.fromOpaque(raw!).takeRetainedValue()
            me.acceptLoop(Int32(truncatingIfNeeded: me.listenFD))
            return nil
        }, box)
        if rc != 0 { Unmanaged<VsockAcceptor>.fromOpaque(box).release(); close(lfd); return .io("pthread_create", errno: rc) }
        pthread_detach(tid)
        return nil
    }

    private var listenFD = -1

    private func acceptLoop(_ lfd: Int32) {
        while true {
            guard let (fd, cid) = Vsock.accept(lfd) else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                log("vsock: accept on port \(port): errno \(errno); the listener stops")
                return
            }
            guard let domain = cids.domain(of: cid) else {
                log("vsock: refused a connection from CID \(cid): no domain has it")
                close(fd)
                continue
            }
            let t: HandoffTransport? = monitor.locked { transports[domain] }
            guard let t, let s = sessions?.session(domain) else {
                log("vsock: connection from \(domain) (CID \(cid)) while the host has no channel for it; closed")
                close(fd)
                continue
            }
            t.handOver(fd)
            s.transportReady()
        }
    }
}
