// The one place where a NULL (or missing) ops slot becomes "unsupported", and
// where a plugin's int32 status plus ody_error becomes an OdysseyError.
import PluginABI

enum BackendCall {
    /// Reads slot `path` of an ops table whose plugin-declared size is `size`;
    /// a slot outside the table or NULL is "unsupported".
    static func slot<Table, Fn>(_ table: UnsafePointer<Table>, size: UInt32, _ path: KeyPath<Table, Fn?>,
                                operation: String, backend: String) throws(OdysseyError) -> Fn {
        let offset = MemoryLayout<Table>.offset(of: path)!
        if offset + MemoryLayout<Fn?>.size <= Int(size), let fn = table.pointee[keyPath: path] { return fn }
        throw OdysseyError(.unsupported, "\(backend) does not support \(operation)")
    }

    /// The `open` slot every ops table starts with: `open(args, &instance, err)`.
    typealias OpenFn = @convention(c) (UnsafePointer<ody_instance_args>?, UnsafeMutablePointer<OpaquePointer?>?,
                                       UnsafeMutablePointer<ody_error>?) -> Int32

    /// Opens an instance of a factory through its `open` slot, handing it the
    /// host services and `context` (its config section, its event source).
    static func open(_ open: OpenFn, factory: LoadedFactory, context: ServiceContext,
                     label: String) throws(OdysseyError) -> OpaquePointer {
        var args = ody_instance_args(struct_size: UInt32(MemoryLayout<ody_instance_args>.size), flags: 0,
                                     host: HostServicesTable.shared, host_ctx: context.opaque, instance_name: nil)
        var out: OpaquePointer?
        try OdysseyError.rethrowing {
            try factory.name.withCString { n in
                args.instance_name = n
                try run("open \(label)") { open(&args, &out, $0) }
            }
        }
        guard let out else { throw OdysseyError(.plugin, "\(label): open returned no instance") }
        return out
    }

    /// Runs one call with a fresh error struct and maps its status.
    @discardableResult
    static func run(_ what: @autoclosure () -> String,
                    _ call: (UnsafeMutablePointer<ody_error>) -> Int32) throws(OdysseyError) -> Int32 {
        var err = ody_error()
        err.struct_size = UInt32(MemoryLayout<ody_error>.size)
        let rc = call(&err)
        if rc >= 0 { return rc }
        let msg = ABIString.read(err.message)
        let text = "\(what()): " + (msg.isEmpty ? String(cString: ody_status_name(rc)) : msg)
        throw OdysseyError(code(for: rc), text, cause: err.backend_code != 0 ? "backend code \(err.backend_code)" : nil)
    }

    static func code(for rc: Int32) -> OdysseyError.Code {
        switch rc {
        case ODY_E_UNSUPPORTED.rawValue: .unsupported
        case ODY_E_INVALID.rawValue, ODY_E_FLAGS.rawValue, ODY_E_TOO_SMALL.rawValue: .invalid
        case ODY_E_NOT_FOUND.rawValue: .notFound
        case ODY_E_EXISTS.rawValue: .exists
        case ODY_E_STATE.rawValue: .state
        case ODY_E_PERMISSION.rawValue: .permission
        case ODY_E_TIMEOUT.rawValue: .timeout
        case ODY_E_IO.rawValue, ODY_E_CLOSED.rawValue: .io
        default: .backend
        }
    }
}
