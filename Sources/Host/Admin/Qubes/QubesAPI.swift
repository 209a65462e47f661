// What every Qubes-compatible method table shares: the daemon's parts, the
// event hub, and the conversions from store and host errors to Qubes
// exception types on the wire.
import Domains

struct QubesAPI: Sendable {
    unowned let daemon: Daemon
    let hub: EventHub
    let permission: AdminPermission
    /// admin.vm.volume.CloneFrom's tokens, shared by every copy of this value.
    let cloneTokens = VolumeCloneTokens()

    var store: DomainStore { daemon.store }
    var lifecycle: DomainLifecycle { daemon.lifecycle }

    /// Runs a store call, sending its DomainError as the Qubes exception it names.
    func domain<T>(_ body: () throws(DomainError) -> T) throws(AdminError) -> T {
        do { return try body() } catch { throw error.adminError }
    }

    /// The destination must exist (QubesVMNotFoundError otherwise).
    func existing(_ name: String) throws(AdminError) -> DomainInfo {
        try domain { () throws(DomainError) in try store.domain(name) }
    }

    static func text(_ payload: [UInt8]) throws(AdminError) -> String {
        guard let s = String(validating: payload, as: UTF8.self) else { throw .protocolError("payload is not UTF-8") }
        return s
    }

    static func lines(_ items: some Sequence<String>) -> [UInt8] {
        var out: [UInt8] = []
        for i in items { out += Array(i.utf8); out.append(10) }
        return out
    }

    /// `key=value key=value` (admin.vm.Create's payload), duplicates refused.
    static func keyValues(_ payload: [UInt8], allowed: Set<String>) throws(AdminError) -> [String: String] {
        let text = try text(payload)
        var out: [String: String] = [:]
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let eq = token.firstIndex(of: "=") else { throw .protocolError("Invalid param name") }
            let k = String(token[..<eq]), v = String(token[token.index(after: eq)...])
            guard allowed.contains(k) else { throw .protocolError("Invalid param name") }
            guard out[k] == nil else { throw .protocolError("duplicated parameters") }
            out[k] = v
        }
        return out
    }
}

extension DomainError {
    var adminError: AdminError { AdminError(qubesType, message) }
}

extension OdysseyError {
    /// The Qubes exception type a host error travels as (a store error inside
    /// keeps its own type, carried in `cause`).
    var adminError: AdminError {
        if let cause, cause.hasPrefix("Qubes") { return AdminError(cause, message) }
        let type = switch code {
        case .notFound: "QubesVMNotFoundError"
        case .invalid: "QubesValueError"
        case .state: "QubesVMNotRunningError"
        case .unsupported: "QubesNotImplementedError"
        case .permission: "PermissionDenied"
        case .protocolError: "ProtocolError"
        default: "QubesException"
        }
        return AdminError(type, description)
    }
}
