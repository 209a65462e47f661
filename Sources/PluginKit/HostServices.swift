// A plugin's view of the services table the host handed in at entry/open.
import PluginABI

public struct HostServices: @unchecked Sendable {
    public let table: UnsafePointer<ody_host_services>?
    public let ctx: UnsafeMutableRawPointer?

    public init(table: UnsafePointer<ody_host_services>?, ctx: UnsafeMutableRawPointer?) {
        self.table = table
        self.ctx = ctx
    }

    public init(_ args: UnsafePointer<ody_instance_args>) {
        self.init(table: args.pointee.host, ctx: args.pointee.host_ctx)
    }

    public func log(_ level: ody_log_level, _ message: String) {
        guard let fn = table?.pointee.log else { return }
        message.withCString { fn(ctx, level.rawValue, $0) }
    }

    public func emit(_ event: inout ody_event) {
        guard let fn = table?.pointee.emit_event else { return }
        event.struct_size = UInt32(MemoryLayout<ody_event>.size)
        withUnsafePointer(to: &event) { fn(ctx, $0) }
    }

    /// A lifecycle event for `domain` entering `state`.
    public func emitLifecycle(domain: String, state: ody_power_state, detail: Int32 = 0, message: String = "") {
        var ev = ody_event()
        ev.kind = ODY_EVENT_LIFECYCLE.rawValue
        ev.state = state.rawValue
        ev.detail_code = detail
        FixedCString.write(domain, into: &ev.domain)
        FixedCString.write(message, into: &ev.message)
        emit(&ev)
    }

    /// The text of `key` in this instance's config section, or nil if unset.
    public func config(_ key: String) -> String? {
        guard let fn = table?.pointee.config_get else { return nil }
        var needed = 0
        var buf = [CChar](repeating: 0, count: 256)
        var rc = key.withCString { fn(ctx, $0, &buf, buf.count, &needed, 0) }
        if rc == ODY_E_TOO_SMALL.rawValue {
            buf = [CChar](repeating: 0, count: needed)
            rc = key.withCString { fn(ctx, $0, &buf, buf.count, &needed, 0) }
        }
        guard rc == ODY_OK.rawValue else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
