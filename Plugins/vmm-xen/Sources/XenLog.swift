// The xentoollog logger handed to libxl: messages go to the host's log, and
// the last error-level message of each thread is kept so a failing call can
// say why (libxl returns only an rc; its reasons go to the logger).
import CXenlight
import Glibc
import PluginABI
import PluginKit

final class XenLog: @unchecked Sendable {
    let host: HostServices
    /// The C logger; `base` is what libxl sees, `owner` points back here (unretained:
    /// the XenLog outlives every ctx that uses it).
    let logger: UnsafeMutablePointer<ody_xtl_logger>
    private let lock = PluginLock()
    private var lastError: [pthread_t: (first: String, last: String)] = [:]
    /// While false, error messages are only kept (and logged at debug): the
    /// caller reports them itself, e.g. the "Xen is not running" open failure.
    private var forwardErrors = true

    init(host: HostServices) {
        self.host = host
        logger = .allocate(capacity: 1)
        logger.initialize(to: ody_xtl_logger())
        ody_xtl_logger_init(logger, Unmanaged.passUnretained(self).toOpaque(), xenLogSink)
    }

    deinit { logger.deallocate() }

    var base: UnsafeMutablePointer<xentoollog_logger> {
        UnsafeMutableRawPointer(logger).assumingMemoryBound(to: xentoollog_logger.self)
    }

    func record(level: xentoollog_level, errnoval: Int32, context: String?, message: String) {
        var text = (context.map { "\($0): " } ?? "") + message
        if errnoval > 0 { text += ": " + String(cString: strerror(errnoval)) }
        var forward = true
        if level.rawValue >= XTL_ERROR.rawValue {
            lock.with {
                // The first error is usually the cause, the last the step that gave up: keep both.
                let me = pthread_self()
                lastError[me] = lastError[me].map { (first: $0.first, last: text) } ?? (first: text, last: text)
                forward = forwardErrors
            }
        }
        let ody: ody_log_level
        switch level.rawValue {
        case _ where !forward: ody = ODY_LOG_DEBUG
        case ..<XTL_PROGRESS.rawValue: ody = ODY_LOG_DEBUG
        case ..<XTL_WARN.rawValue: ody = ODY_LOG_INFO
        case XTL_WARN.rawValue: ody = ODY_LOG_WARNING
        default: ody = ODY_LOG_ERROR
        }
        host.log(ody, "libxl: " + text)
    }

    /// Runs `body` with libxl's errors kept for the caller instead of logged.
    func quietly<T>(_ body: () -> T) -> T {
        lock.with { forwardErrors = false }
        defer { lock.with { forwardErrors = true } }
        return body()
    }

    /// Forgets this thread's last error (call before a libxl call whose failure we report).
    func reset() { lock.with { lastError[pthread_self()] = nil } }

    /// This thread's error-level messages since `reset` (the first, and the
    /// last if another came after), consumed.
    func takeErrors() -> String? {
        guard let e = lock.with({ lastError.removeValue(forKey: pthread_self()) }) else { return nil }
        return e.first == e.last ? e.first : "\(e.first); then \(e.last)"
    }
}

/// The shim's sink: one formatted message for the owning XenLog.
private let xenLogSink: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    owner, level, errnoval, context, message in
    guard let owner, let message else { return }
    Unmanaged<XenLog>.fromOpaque(owner).takeUnretainedValue()
        .record(level: xentoollog_level(rawValue: UInt32(bitPattern: level)), errnoval: errnoval,
                context: context.map { String(cString: $0) }, message: String(cString: message))
}
