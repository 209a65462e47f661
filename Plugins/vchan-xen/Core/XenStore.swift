// The few xenstore reads vchan-xen needs: this domain's id, a domain's id by
// its name, and removing a served channel's entries once its client is in.
// xenstore's /local/domain/N/name is written by the toolstack in dom0 (a
// domain cannot rewrite its own name), so a name found there is trusted as
// much as the toolstack is; values are still bounded and parsed strictly.
import CXenvchan
import Glibc
import PluginABI

public final class XenStore: @unchecked Sendable {
    let api: XenVchanAPI
    let handle: OpaquePointer

    /// xs_open(0): the socket of xenstored in dom0, /dev/xen/xenbus in a domU.
    public init(api: XenVchanAPI) throws(XenVchanError) {
        guard let h = api.xs_open(0) else { throw XenVchanError.call("xs_open (is xenstored running?)", errno: errno) }
        self.api = api; handle = h
    }

    deinit { api.xs_close(handle) }

    /// A node's value (nil when absent), at most 64 bytes: every value read here is a number or a name.
    public func read(_ path: String) -> String? {
        var len: UInt32 = 0
        guard let p = api.xs_read(handle, ODY_XS_TRANSACTION_NONE, path, &len) else { return nil }
        defer { free(p) }
        guard len <= 64 else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(len)), as: UTF8.self)
    }

    public func remove(_ path: String) { _ = api.xs_rm(handle, ODY_XS_TRANSACTION_NONE, path) }

    /// Children of a directory (nil if absent), bounded.
    public func list(_ path: String, max: Int = 4096) -> [String]? {
        var n: UInt32 = 0
        guard let p = api.xs_directory(handle, ODY_XS_TRANSACTION_NONE, path, &n) else { return nil }
        defer { free(p) }
        return (0..<min(Int(n), max)).compactMap { p[$0].map { String(cString: $0) } }
    }

    /// A domain id: digits only, 0...32751 (DOMID_FIRST_RESERVED - 1).
    public static func parseDomid(_ s: String?) -> Int32? {
        guard let s, !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int32(s), v < 0x7FF0 else { return nil }
        return v
    }

    /// This domain's id ("domid" relative to its own xenstore home).
    public func ownDomid() throws(XenVchanError) -> Int32 {
        guard let id = XenStore.parseDomid(read("domid")) else {
            throw XenVchanError(ODY_E_BACKEND, "xenstore has no readable \"domid\" for this domain (xen-init-dom0 not run?)")
        }
        return id
    }

    /// The id of the running domain named `name`: Odyssey's "dom0" is 0,
    /// any other name is looked up in /local/domain/*/name (dom0 sees every
    /// domain there; a domU sees only itself and is expected to pass ids).
    public func domid(named name: String) throws(XenVchanError) -> Int32 {
        if name == "dom0" { return 0 }
        for child in list("/local/domain") ?? [] {
            guard let id = XenStore.parseDomid(child) else { continue }
            if read("/local/domain/\(id)/name") == name { return id }
        }
        throw XenVchanError(ODY_E_NOT_FOUND, "no running Xen domain is named \"\(name)\" (xenstore /local/domain/*/name)")
    }
}
