// The table of host services handed to every plugin (ody_host_services).
// The callbacks are plain global functions, hence nonisolated: plugins call
// them from their own threads, and an actor-isolated closure would trap.
import Logging
#if canImport(Glibc)
import Glibc
#endif
import PluginABI

/// Who is calling a host service: a plugin (at entry) or one of its
/// instances. Passed to plugins as an opaque `ctx` and kept alive forever
/// (plugins are never unloaded, and may call in until the process exits).
final class ServiceContext: @unchecked Sendable {
    let source: String                 // "vmm-libvirt" or "vmm.libvirt"
    let config: [String: String]
    let logger: Logger
    let events: EventBus

    init(source: String, config: [String: String], logger: Logger, events: EventBus) {
        self.source = source
        self.config = config
        self.logger = logger
        self.events = events
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }

    static func from(_ ctx: UnsafeMutableRawPointer?) -> ServiceContext? {
        guard let ctx else { return nil }
        return Unmanaged<ServiceContext>.fromOpaque(ctx).takeUnretainedValue()
    }
}

private func hostLog(_ ctx: UnsafeMutableRawPointer?, _ level: UInt32, _ message: UnsafePointer<CChar>?) {
    guard let c = ServiceContext.from(ctx), let message else { return }
    let text = String(cString: message)
    let lvl: Logger.Level = switch level {
    case ODY_LOG_TRACE.rawValue: .trace
    case ODY_LOG_DEBUG.rawValue: .debug
    case ODY_LOG_INFO.rawValue: .info
    case ODY_LOG_WARNING.rawValue: .warning
    default: .error
    }
    c.logger.log(level: lvl, "\(c.source): \(text)")
}

private func hostEmit(_ ctx: UnsafeMutableRawPointer?, _ event: UnsafePointer<ody_event>?) {
    guard let c = ServiceContext.from(ctx), let event else { return }
    // Read only what lies inside the plugin's struct_size.
    let size = Int(event.pointee.struct_size)
    guard size >= MemoryLayout<ody_event>.offset(of: \ody_event.message)! else {
        c.logger.warning("\(c.source): event with struct_size \(size) too small, dropped")
        return
    }
    let e = event.pointee
    let kind: HostEvent.Kind = switch e.kind {
    case ODY_EVENT_LIFECYCLE.rawValue: .lifecycle
    case ODY_EVENT_COMPLETION.rawValue: .completion
    default: .custom
    }
    let message = size >= MemoryLayout<ody_event>.size ? ABIString.read(e.message) : ""
    c.events.publish(HostEvent(kind: kind, source: c.source, domain: ABIString.read(e.domain),
                               state: PowerState(abi: e.state), seq: e.seq, status: e.status,
                               name: ABIString.read(e.name), message: message))
}

private func hostConfigGet(_ ctx: UnsafeMutableRawPointer?, _ key: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?,
                           _ size: Int, _ needed: UnsafeMutablePointer<Int>?, _ flags: UInt32) -> Int32 {
    guard flags == 0 else { return ODY_E_FLAGS.rawValue }
    guard let c = ServiceContext.from(ctx), let key else { return ODY_E_INVALID.rawValue }
    guard let value = c.config[String(cString: key)] else { return ODY_E_NOT_FOUND.rawValue }
    let bytes = Array(value.utf8) + [0]
    needed?.pointee = bytes.count
    guard let buf, size >= bytes.count else { return ODY_E_TOO_SMALL.rawValue }
    bytes.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    return ODY_OK.rawValue
}

enum HostServicesTable {
    /// One immortal table for the whole process.
    /// Immutable after creation; shared read-only with every plugin.
    nonisolated(unsafe) static let shared: UnsafePointer<ody_host_services> = {
        let p = UnsafeMutablePointer<ody_host_services>.allocate(capacity: 1)
        p.initialize(to: ody_host_services(
            struct_size: UInt32(MemoryLayout<ody_host_services>.size),
            version: ODY_ABI_MINOR,
            log: hostLog, emit_event: hostEmit, config_get: hostConfigGet,
            call_service: nil, call_finish: nil,  // no qrexec client inside odysseyd
            // The host's GUI role (focus, the clipboard and its policy check) is
            // the next slice of issue 15; until then gui plugins see these as
            // unsupported and move no clipboard data.
            gui_focus: nil, clipboard_copy: nil, clipboard_paste: nil))
        return UnsafePointer(p)
    }()
}

/// Fixed-size C strings from the ABI, read safely.
enum ABIString {
    static func read<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let b = raw.bindMemory(to: UInt8.self)
            return String(decoding: b[..<(b.firstIndex(of: 0) ?? b.count)], as: UTF8.self)
        }
    }

    @discardableResult
    static func write<T>(_ value: String, into tuple: inout T) -> Bool {
        withUnsafeMutableBytes(of: &tuple) { raw in
            let u = Array(value.utf8)
            let n = min(u.count, raw.count - 1)
            for i in 0..<raw.count { raw[i] = i < n ? u[i] : 0 }
            return n == u.count
        }
    }

    /// A C string from a plugin's pointer, bounded so a missing NUL cannot run away.
    static func read(_ p: UnsafePointer<CChar>?, limit: Int = 4096) -> String? {
        guard let p else { return nil }
        let n = strnlen(p, limit)
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }
}
