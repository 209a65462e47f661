// libvirt errors (virGetLastError, thread-local) as ody statuses, with the
// virErrorNumber kept as the backend code.
import CLibvirt
import PluginABI
import PluginKit

enum VirError {
    /// The ody status for a virErrorNumber.
    static func status(_ code: Int32) -> ody_status_code {
        switch UInt32(bitPattern: code) {
        case VIR_ERR_NO_DOMAIN.rawValue: ODY_E_NOT_FOUND
        case VIR_ERR_OPERATION_INVALID.rawValue: ODY_E_STATE
        case VIR_ERR_DOM_EXIST.rawValue: ODY_E_EXISTS
        case VIR_ERR_NO_SUPPORT.rawValue, VIR_ERR_ARGUMENT_UNSUPPORTED.rawValue: ODY_E_UNSUPPORTED
        case VIR_ERR_INVALID_ARG.rawValue, VIR_ERR_XML_ERROR.rawValue, VIR_ERR_XML_DETAIL.rawValue,
             VIR_ERR_CONFIG_UNSUPPORTED.rawValue, VIR_ERR_INVALID_DOMAIN.rawValue: ODY_E_INVALID
        case VIR_ERR_OPERATION_DENIED.rawValue, VIR_ERR_AUTH_FAILED.rawValue, VIR_ERR_ACCESS_DENIED.rawValue,
             VIR_ERR_AUTH_CANCELLED.rawValue: ODY_E_PERMISSION
        case VIR_ERR_OPERATION_TIMEOUT.rawValue, VIR_ERR_AGENT_UNRESPONSIVE.rawValue: ODY_E_TIMEOUT
        case VIR_ERR_NO_MEMORY.rawValue: ODY_E_NO_MEMORY
        case VIR_ERR_SYSTEM_ERROR.rawValue: ODY_E_IO
        default: ODY_E_BACKEND
        }
    }
}

extension LibvirtAPI {
    /// Fills `err` from libvirt's last error on this thread and returns the status.
    @discardableResult
    func fail(_ err: UnsafeMutablePointer<ody_error>?, _ what: String) -> Int32 {
        let code = virGetLastError()?.pointee.code ?? 0
        let message = virGetLastErrorMessage().map { String(cString: $0) } ?? "unknown libvirt error"
        virResetLastError()
        return PluginKit.fail(err, code == 0 ? ODY_E_BACKEND : VirError.status(code), backend: code, "\(what): \(message)")
    }
}
