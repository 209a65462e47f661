// Making the two ends of a vchan in Qubes' xenstore layout (which
// libxenvchan leaves to its caller): the server of (port P, client domain C)
// writes its ring-ref and event-channel under
// /local/domain/<server>/data/vchan/<C>/<P>, readable by C alone; the client
// reads them there. The grant and the event channel are made for domain C
// only, so Xen itself guarantees who is at the other end.
import CXenvchan
import Glibc
import PluginABI

public struct XenVchanEnds: Sendable {
    public let api: XenVchanAPI
    public let store: XenStore
    /// This domain's id (xenstore "domid").
    public let ownDomid: Int32
    public let connectTimeoutNs: UInt64
    /// Ends the channels of peers destroyed without closing (nil: not
    /// watched; the agent's peer is dom0, whose death ends the domU anyway).
    public let watch: XenPeerWatch?

    public init(api: XenVchanAPI, store: XenStore, connectTimeoutNs: UInt64, watch: XenPeerWatch? = nil) throws(XenVchanError) {
        self.api = api; self.store = store; self.connectTimeoutNs = connectTimeoutNs; self.watch = watch
        ownDomid = try store.ownDomid()
    }

    public static func serverPath(client: Int32, port: UInt32) -> String { "data/vchan/\(client)/\(port)" }
    public static func clientPath(server: Int32, client: Int32, port: UInt32) -> String {
        "/local/domain/\(server)/data/vchan/\(client)/\(port)"
    }

    /// Grants a ring to `client` and publishes it; the channel is WAITING until the client maps it.
    public func serve(client: Int32, port: UInt32, readMin: Int, writeMin: Int, label: String) throws(XenVchanError) -> XenChannel {
        let path = XenVchanEnds.serverPath(client: client, port: port)
        // libxenvchan refuses rings over 1 MiB (MAX_RING_SIZE) with a bare NULL; this says so.
        let maxRing = 1 << 20
        guard readMin <= maxRing, writeMin <= maxRing else {
            throw XenVchanError(ODY_E_INVALID, "server_init \(label): read_min \(readMin) / write_min \(writeMin) over libxenvchan's \(maxRing) bytes")
        }
        if store.read(path + "/ring-ref") != nil {
            throw XenVchanError(ODY_E_EXISTS, "server_init \(label): a channel is already served at /local/domain/\(ownDomid)/\(path)")
        }
        errno = 0
        guard let ctrl = api.server_init(nil, Int32(client), path, readMin, writeMin) else {
            throw XenVchanError.call("server_init \(label) (libxenvchan_server_init, domid \(client))", errno: errno)
        }
        return try XenChannel(api: api, ctrl: ctrl, isServer: true, label: label,
                              advertised: (store, "/local/domain/\(ownDomid)/\(path)"), peer: client, own: ownDomid, watch: watch)
    }

    /// Maps the ring `server` published for this domain, retrying while it
    /// has not published it yet (backoff from 50 us capped at 10 ms, as
    /// vchan-socket), up to connectTimeoutNs.
    public func connect(server: Int32, port: UInt32, label: String) throws(XenVchanError) -> XenChannel {
        let path = XenVchanEnds.clientPath(server: server, client: ownDomid, port: port)
        let deadline = XenVchanEnds.monotonicNs() + connectTimeoutNs
        var backoffUs: UInt32 = 50
        var lastErrno: Int32 = 0
        while true {
            errno = 0
            if let ctrl = api.client_init(nil, Int32(server), path) {
                return try XenChannel(api: api, ctrl: ctrl, isServer: false, label: label, advertised: nil,
                                      peer: server, own: ownDomid, watch: watch)
            }
            lastErrno = errno
            if XenVchanEnds.monotonicNs() >= deadline { break }
            usleep(backoffUs)
            backoffUs = min(backoffUs * 2, 10_000)
        }
        let why = lastErrno == 0 ? "no server" : String(cString: strerror(lastErrno))
        throw XenVchanError(ODY_E_TIMEOUT, errno: lastErrno,
                            "client_init \(label): nothing served at \(path) within \(connectTimeoutNs / 1_000_000) ms (\(why))")
    }

    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
