// The plugin's one error: an ody status, the errno behind it (0 if none) and
// a message naming the operation and the channel. (A final class, as
// PluginKit's LibraryError: a struct's metadata would be reached through the
// GOT and put a symbol in the plugin's .dynsym beside the entry point.)
import Glibc
import PluginABI

public final class XenVchanError: Error, Sendable, CustomStringConvertible {
    public let code: ody_status_code
    public let errno: Int32
    public let message: String
    public var description: String { message }

    public init(_ code: ody_status_code, errno: Int32 = 0, _ message: String) {
        self.code = code; self.errno = errno; self.message = message
    }

    /// A failed library call: the status follows errno.
    static func call(_ what: String, errno e: Int32) -> XenVchanError {
        let why = e == 0 ? "failed" : String(cString: strerror(e))
        let code: ody_status_code = switch e {
        case EACCES, EPERM: ODY_E_PERMISSION
        case ENOENT: ODY_E_NOT_FOUND
        case ENOMEM, ENOSPC: ODY_E_NO_MEMORY
        case ETIMEDOUT: ODY_E_TIMEOUT
        default: ODY_E_IO
        }
        return XenVchanError(code, errno: e, "\(what): \(why)")
    }
}
