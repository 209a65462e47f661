// The admin methods the daemon answers. Each method is declared once in a
// table with its shape; a request that does not fit is a ProtocolError.
import PluginABI

struct AdminMethod: Sendable {
    let name: String
    let takesArgument: Bool       // may carry +ARG
    let takesPayload: Bool
    let destMustBeAdmin: Bool
    let run: @Sendable (AdminRequest) throws(AdminError) -> [UInt8]
}

final class AdminMethods: @unchecked Sendable {
    unowned let daemon: Daemon
    private var table: [String: AdminMethod] = [:]

    init(daemon: Daemon) {
        self.daemon = daemon
        for m in odysseyMethods() { table[m.name] = m }
    }

    func handle(_ r: AdminRequest) -> AdminResponse {
        // Local socket clients are the admin domain; requests on behalf of
        // other domains arrive through qrexec (a later issue).
        guard r.source == "dom0" else { return .failure(.permissionDenied()) }
        guard let m = table[r.method] else { return .failure(.protocolError("unknown method \(r.method)")) }
        if !m.takesArgument && !r.argument.isEmpty { return .failure(.protocolError("\(r.method) takes no argument")) }
        if !m.takesPayload && !r.payload.isEmpty { return .failure(.protocolError("\(r.method) takes no payload")) }
        if m.destMustBeAdmin && r.dest != "dom0" { return .failure(.protocolError("\(r.method) must be called on dom0")) }
        do throws(AdminError) { return .success(try m.run(r)) } catch { return .failure(error) }
    }

    private func odysseyMethods() -> [AdminMethod] {
        [
            AdminMethod(name: "admin.odyssey.Status", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [unowned self] _ in
                JSON.encode(daemon.status())
            },
            AdminMethod(name: "admin.odyssey.Plugins", takesArgument: false, takesPayload: false, destMustBeAdmin: true) { [unowned self] _ in
                JSON.encode(PluginReport(registry: daemon.backends.registry, hostABI: "\(ODY_ABI_MAJOR).\(ODY_ABI_MINOR)"))
            },
        ] + BackendMethods(daemon: daemon).methods() + PolicyMethods(daemon: daemon).methods()
    }
}

extension OdysseyError {
    /// The Qubes exception type a host error travels as.
    var adminError: AdminError {
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
