// One opened "xen" vchan instance: the libraries, a xenstore connection,
// this domain's id, and how channels are named in xenstore.
//
// Layout (Qubes' libvchan, which libxenvchan leaves to its caller): the
// server of (port P, client domain C) writes its ring-ref and event-channel
// under /local/domain/<server>/data/vchan/<C>/<P>, readable by C alone;
// the client reads them there. The grant and the event channel are made for
// domain C only, so Xen itself guarantees who is at the other end.
import CXenvchan
import Glibc
import PluginABI
import PluginKit

final class XenBackend: @unchecked Sendable {
    let host: HostServices
    let api: XenVchanAPI
    let store: XenStore
    let ownDomid: Int32
    let connectTimeoutNs: UInt64

    private init(host: HostServices, api: XenVchanAPI, store: XenStore, ownDomid: Int32, connectTimeoutNs: UInt64) {
        self.host = host; self.api = api; self.store = store; self.ownDomid = ownDomid; self.connectTimeoutNs = connectTimeoutNs
    }

    /// The device nodes every channel needs; without them Xen is not running here.
    static let devices = ["/dev/xen/evtchn", "/dev/xen/gntdev", "/dev/xen/gntalloc"]

    static func open(host: HostServices) throws(XenVchanError) -> XenBackend {
        var timeoutMs: UInt64 = 5000
        if let t = host.config("connect_timeout_ms") {
            guard let v = UInt64(t), v > 0, v <= 3_600_000 else {
                throw XenVchanError(ODY_E_INVALID, "[vchan.xen] connect_timeout_ms \"\(t)\" must be 1..3600000 milliseconds")
            }
            timeoutMs = v
        }
        // Checked before any library is loaded: on a host without Xen the
        // answer is this one line, and nothing of Xen is mapped.
        let missing = devices.filter { access($0, F_OK) != 0 }
        if !missing.isEmpty {
            throw XenVchanError(ODY_E_UNSUPPORTED, "Xen is not running here: \(missing.joined(separator: ", ")) missing "
                + "(vchan-xen needs a Xen domain with the xen-evtchn, xen-gntdev and xen-gntalloc modules; "
                + "elsewhere use the socket, virtio-serial or vsock channel)")
        }
        let api: XenVchanAPI
        do throws(LibraryError) { api = try XenVchanAPI.shared.get() } catch {
            throw XenVchanError(ODY_E_BACKEND, error.message)
        }
        let store = try XenStore(api: api)
        let own = try store.ownDomid()
        return XenBackend(host: host, api: api, store: store, ownDomid: own, connectTimeoutNs: timeoutMs * 1_000_000)
    }

    /// A domain's id: the endpoint's when it gives one (>= 0), else by name.
    func domid(_ given: Int32, name: String, own: Bool) throws(XenVchanError) -> Int32 {
        if given >= 0 {
            guard given < 0x7FF0 else { throw XenVchanError(ODY_E_INVALID, "domain id \(given) is out of range (0..32751)") }
            return given
        }
        return own ? ownDomid : try store.domid(named: name)
    }

    static func serverPath(client: Int32, port: UInt32) -> String { "data/vchan/\(client)/\(port)" }
    static func clientPath(server: Int32, client: Int32, port: UInt32) -> String {
        "/local/domain/\(server)/data/vchan/\(client)/\(port)"
    }

    func serve(client: Int32, port: UInt32, readMin: Int, writeMin: Int, label: String) throws(XenVchanError) -> XenChannel {
        let path = XenBackend.serverPath(client: client, port: port)
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
                              advertised: (store, "/local/domain/\(ownDomid)/\(path)"))
    }

    /// Connects, retrying while the server has not published its ring yet
    /// (backoff from 50 us capped at 10 ms, as vchan-socket), up to connect_timeout_ms.
    func connect(server: Int32, port: UInt32, label: String) throws(XenVchanError) -> XenChannel {
        let path = XenBackend.clientPath(server: server, client: ownDomid, port: port)
        let deadline = MonotonicClock.now() + Double(connectTimeoutNs) / 1e9
        var backoffUs: UInt32 = 50
        var lastErrno: Int32 = 0
        while true {
            errno = 0
            if let ctrl = api.client_init(nil, Int32(server), path) {
                return try XenChannel(api: api, ctrl: ctrl, isServer: false, label: label, advertised: nil)
            }
            lastErrno = errno
            if MonotonicClock.now() >= deadline { break }
            usleep(backoffUs)
            backoffUs = min(backoffUs * 2, 10_000)
        }
        let why = lastErrno == 0 ? "no server" : String(cString: strerror(lastErrno))
        throw XenVchanError(ODY_E_TIMEOUT, errno: lastErrno,
                            "client_init \(label): nothing served at \(path) within \(connectTimeoutNs / 1_000_000) ms (\(why))")
    }
}
