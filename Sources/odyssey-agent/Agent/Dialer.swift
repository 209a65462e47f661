// How the agent reaches the host's channels (control port 512, data ports).
//
//   default                  the socket directory ($VCHAN_SOCKET_DIR, native
//                            domains): one Unix socket file per channel.
//   ODYSSEY_VCHAN=virtio-serial:/dev/vportNpM
//                            a VM's virtio-serial port carrying the StreamMux
//                            multiplexer (a Unix socket path works too: tests).
//   ODYSSEY_VCHAN=vsock:CID:PORT
//                            one vsock connection to the host carrying the mux.
//   ODYSSEY_VCHAN=xen        a Xen domU: one vchan-xen client of dom0 per
//                            channel, behind a socketpair (XenRoute.swift).
//
// Either way dial() returns the same connected SocketChannel the agent used
// before (the mux's stream is a socketpair end), retrying while the host has
// no listener on the port (like ECONNREFUSED on a socket file). When the mux
// session resets, the control channel simply closes and Control reconnects.
#if canImport(Glibc)
import Glibc
#endif
import StreamMux
import VchanSocketCore

final class ChannelDialer: @unchecked Sendable {
    enum Route { case socketDir(String), mux(MuxSession), xen(XenRoute) }
    let route: Route
    let label: String

    init(route: Route, label: String) { self.route = route; self.label = label }

    /// From $ODYSSEY_VCHAN (nil/empty: the socket directory); a message that
    /// teaches the format otherwise.
    static func from(environment value: String?, socketDir: String) -> Result<ChannelDialer, VchanError> {
        guard let value, !value.isEmpty else { return .success(ChannelDialer(route: .socketDir(socketDir), label: socketDir)) }
        let usage = "ODYSSEY_VCHAN must be virtio-serial:/dev/vportNpM, vsock:CID:PORT or xen (got \"\(value)\")"
        if value == "xen" {
            return XenRoute.open().map { ChannelDialer(route: .xen($0), label: $0.label) }
        }
        let transport: MuxTransport
        if value.hasPrefix("virtio-serial:") {
            let path = String(value.dropFirst("virtio-serial:".count))
            guard path.hasPrefix("/") else { return .failure(.invalid(usage)) }
            var st = stat()
            let isSocket = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
            transport = isSocket ? UnixSocketTransport(path: path) : CharDeviceTransport(path: path)
        } else if value.hasPrefix("vsock:") {
            let f = value.dropFirst("vsock:".count).split(separator: ":")
            guard f.count == 2, let cid = UInt32(f[0]), let port = UInt32(f[1]), cid >= 2 else { return .failure(.invalid(usage)) }
            transport = VsockTransport(cid: cid, port: port)
        } else {
            return .failure(.invalid(usage))
        }
        do throws(MuxError) {
            let s = try MuxSession(role: .guest, transport: transport) { Log.say($0) }
            return .success(ChannelDialer(route: .mux(s), label: transport.label))
        } catch { return .failure(.invalid("\(error)")) }
    }

    /// A connected channel to the host's `port`, retrying with a backoff from
    /// 50 µs capped at `maxBackoffNs` until `timeoutNs` (nil: for ever).
    func dial(domain: String, port: UInt32, timeoutNs: Int64?, maxBackoffNs: Int64 = 10_000_000) throws(VchanError) -> SocketChannel {
        switch route {
        case .socketDir(let dir):
            let path = ChannelLayout.clientPath(base: dir, local: domain, remote: ChannelLayout.adminDomain, port: port)
            return try SocketChannel.connect(path: path, timeoutNs: timeoutNs, maxBackoffNs: maxBackoffNs)
        case .mux, .xen:
            let deadline = timeoutNs.map { SocketChannel.monotonicNs() + $0 }
            var backoff: Int64 = 50_000
            while true {
                let left = deadline.map { max($0 - SocketChannel.monotonicNs(), 0) }
                if let ch = try attempt(port: port, timeoutNs: left, totalNs: timeoutNs) { return ch }
                if let deadline, SocketChannel.monotonicNs() >= deadline {
                    throw .timeout("\(label) port \(port): no host listener after \((timeoutNs ?? 0) / 1_000_000) ms")
                }
                var ts = timespec(tv_sec: Int(backoff / 1_000_000_000), tv_nsec: Int(backoff % 1_000_000_000))
                nanosleep(&ts, nil)
                backoff = min(backoff * 2, maxBackoffNs)
            }
        }
    }

    /// One try over a mux or Xen route: nil while the host has no listener
    /// on `port` (try again, as ECONNREFUSED on a socket file).
    private func attempt(port: UInt32, timeoutNs left: Int64?, totalNs: Int64?) throws(VchanError) -> SocketChannel? {
        switch route {
        case .socketDir: return nil   // dial() connects these itself
        case .xen(let xen): return try xen.tryDial(port: port)
        case .mux(let session):
            do throws(MuxError) {
                return SocketChannel.adopt(connectedFD: try session.dial(port: port, timeoutNs: left))
            } catch {
                switch error {
                case .refused, .reset: return nil   // no listener yet, or the host came back: try again
                case .timeout: throw .timeout("\(label) port \(port): no host listener after \((totalNs ?? 0) / 1_000_000) ms")
                default: throw .invalid("\(label) port \(port): \(error)")
                }
            }
        }
    }

    /// Whether the host can attach descriptors to control messages over this
    /// route (socket files and the mux do; Xen does not: it names ports).
    var carriesDescriptors: Bool {
        if case .xen = route { return false }
        return true
    }

    /// For log lines: what port `port` is reached through.
    func describe(_ domain: String, port: UInt32) -> String {
        switch route {
        case .socketDir(let dir): ChannelLayout.clientPath(base: dir, local: domain, remote: ChannelLayout.adminDomain, port: port)
        case .mux, .xen: "\(label) port \(port)"
        }
    }
}
