// Filling the caller-owned ody_error and reading it back, from Swift.
import PluginABI

/// Writes `message` into `err` (respecting its struct_size) and returns `code`,
/// so an entry point can `return fail(err, ODY_E_INVALID, "...")`.
@discardableResult
public func fail(_ err: UnsafeMutablePointer<ody_error>?, _ code: ody_status_code, backend: Int32 = 0,
                 _ message: String) -> Int32 {
    fail(err, code.rawValue, backend: backend, message)
}

@discardableResult
public func fail(_ err: UnsafeMutablePointer<ody_error>?, _ code: Int32, backend: Int32 = 0,
                 _ message: String) -> Int32 {
    message.withCString { ody_error_set(err, code, backend, $0) }
}

/// A fresh error struct with its size set, for the caller side of a call.
public func makeError() -> ody_error {
    var e = ody_error()
    e.struct_size = UInt32(MemoryLayout<ody_error>.size)
    return e
}

extension ody_error {
    /// The message as a Swift string (empty if the callee wrote none).
    public var text: String { FixedCString.read(message) }
}

public extension Int32 {
    static let ok = ODY_OK.rawValue
}
