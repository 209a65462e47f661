// One opened "xen" vchan instance: its config, the libraries (dlopened on
// the first open), a xenstore connection and this domain's id, and how an
// endpoint's names become domain ids.
import Glibc
import PluginABI
import PluginKit
import XenVchanCore

final class XenBackend: @unchecked Sendable {
    let host: HostServices
    let ends: XenVchanEnds
    var ownDomid: Int32 { ends.ownDomid }

    private init(host: HostServices, ends: XenVchanEnds) { self.host = host; self.ends = ends }

    /// The peer watch's thread ends with the instance (within its recheck interval).
    deinit { ends.watch?.stop() }

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
        do throws(LibraryError) { api = try XenVchanLoader.shared.get() } catch {
            throw XenVchanError(ODY_E_BACKEND, error.message)
        }
        let ends = try XenVchanEnds(api: api, store: try XenStore(api: api), connectTimeoutNs: timeoutMs * 1_000_000,
                                    watch: XenPeerWatch(api: api))
        return XenBackend(host: host, ends: ends)
    }

    /// A domain's id: the endpoint's when it gives one (>= 0), else this
    /// domain's own (`own`) or the one xenstore names so.
    func domid(_ given: Int32, name: String, own: Bool) throws(XenVchanError) -> Int32 {
        if given >= 0 {
            guard given < 0x7FF0 else { throw XenVchanError(ODY_E_INVALID, "domain id \(given) is out of range (0..32751)") }
            return given
        }
        return own ? ownDomid : try ends.store.domid(named: name)
    }
}

extension XenVchanError {
    @discardableResult
    func report(_ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
        fail(err, code, backend: errno, message)
    }
}
