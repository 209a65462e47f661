// libxl return codes (libxl_error) as ody statuses; the rc is kept as the
// backend code and libxl's own reason (from the logger) goes in the message.
import CXenlight
import PluginABI
import PluginKit

enum XenError {
    static func status(_ rc: Int32) -> ody_status_code {
        switch rc {
        case ERROR_DOMAIN_NOTFOUND.rawValue, ERROR_NOTFOUND.rawValue: ODY_E_NOT_FOUND
        case ERROR_INVAL.rawValue: ODY_E_INVALID
        case ERROR_NOMEM.rawValue: ODY_E_NO_MEMORY
        case ERROR_NOPARAVIRT.rawValue, ERROR_NI.rawValue: ODY_E_UNSUPPORTED
        case ERROR_TIMEDOUT.rawValue: ODY_E_TIMEOUT
        default: ODY_E_BACKEND
        }
    }

    @discardableResult
    static func fail(_ err: UnsafeMutablePointer<ody_error>?, _ rc: Int32, _ what: String, log: XenLog) -> Int32 {
        let why = log.takeErrors().map { ": \($0)" } ?? ""
        return PluginKit.fail(err, status(rc), backend: rc, "\(what): libxl error \(rc)\(why)")
    }
}
