// The instance's libxl event thread. libxl hands events to `event_occurs`
// on whatever thread happens to be inside libxl; that hook only queues them
// and wakes this thread, which runs libxl's fds and timeouts through
// libxl_osevent_beforepoll/afterpoll (the only poller of this ctx, as libxl
// requires) plus a wake-up pipe, then handles the queue outside any libxl
// call: a domain that shut down is destroyed (libxl applies no on_poweroff
// action itself), a dead one is reported Halted and its watch dropped.
import CXenlight
import Glibc
import PluginABI
import PluginKit

struct ThreadError: Error {
    let message: String
    let errno: Int32
}

final class XenEventThread: @unchecked Sendable {
    private struct Pending {
        var type: libxl_event_type
        var domid: UInt32
        var reason: UInt8
    }

    /// The owning instance; it outlives this thread (close() joins before freeing).
    private unowned(unsafe) let vmm: XenVmm
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let hooks: UnsafeMutablePointer<libxl_event_hooks>
    private let lock = PluginLock()
    private var queue: [Pending] = []
    private var stopping = false
    private var thread = pthread_t()

    private init(vmm: XenVmm, wakeRead: Int32, wakeWrite: Int32, hooks: UnsafeMutablePointer<libxl_event_hooks>) {
        self.vmm = vmm; self.wakeRead = wakeRead; self.wakeWrite = wakeWrite; self.hooks = hooks
    }

    /// Sets up the wake pipe and registers the event hooks with libxl. Must
    /// run before anything else uses the ctx (libxl requires that of
    /// libxl_event_register_callbacks): the instance is not handed out yet.
    static func make(_ vmm: XenVmm) -> Result<XenEventThread, ThreadError> {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            return .failure(ThreadError(message: "pipe: \(String(cString: strerror(errno)))", errno: errno))
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        let hooks = UnsafeMutablePointer<libxl_event_hooks>.allocate(capacity: 1)
        hooks.initialize(to: libxl_event_hooks())
        let t = XenEventThread(vmm: vmm, wakeRead: fds[0], wakeWrite: fds[1], hooks: hooks)
        hooks.pointee.event_occurs_mask = UInt64.max
        hooks.pointee.event_occurs = xenEventOccurs
        hooks.pointee.disaster = xenEventDisaster
        vmm.xl.libxl_event_register_callbacks(vmm.ctx, hooks, Unmanaged.passUnretained(t).toOpaque())
        return .success(t)
    }

    /// Starts the poll thread. On failure the caller frees the ctx, then calls `release`.
    func launch() -> ThreadError? {
        let arg = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let t = Unmanaged<XenEventThread>.fromOpaque(arg!).takeRetainedValue()
            t.run()
            return nil
        }, arg)
        guard rc == 0 else {
            Unmanaged<XenEventThread>.fromOpaque(arg).release()
            return ThreadError(message: "pthread_create: \(String(cString: strerror(rc)))", errno: rc)
        }
        return nil
    }

    var ctx: OpaquePointer { vmm.ctx }
    var xl: XenAPI { vmm.xl }

    /// Called from libxl, on any thread: queue and wake.
    fileprivate func enqueue(_ ev: libxl_event) {
        let reason = ev.type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN ? ev.u.domain_shutdown.shutdown_reason : 0
        lock.with { queue.append(Pending(type: ev.type, domid: ev.domid, reason: reason)) }
        wake()
    }

    fileprivate func disaster(_ type: libxl_event_type, _ message: String, _ errnoval: Int32) {
        vmm.host.log(ODY_LOG_ERROR, "libxl event disaster (event type \(type.rawValue)): \(message)"
                     + (errnoval > 0 ? ": \(String(cString: strerror(errnoval)))" : "") + "; lifecycle events may be missing")
    }

    private func wake() {
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)  // a full pipe already means "wake up"
    }

    func stop() {
        lock.with { stopping = true }
        wake()
        pthread_join(thread, nil)
    }

    /// Frees what libxl may call into; only after libxl_ctx_free.
    func release() {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        hooks.deallocate()
    }

    private func run() {
        let ctx = vmm.ctx
        var fds = [pollfd](repeating: pollfd(), count: 16)
        while !lock.with({ stopping }) {
            handleQueue()
            var nfds = Int32(fds.count - 1)
            var timeout: Int32 = -1
            var now = timeval()
            gettimeofday(&now, nil)
            let rc = fds.withUnsafeMutableBufferPointer { xl.libxl_osevent_beforepoll(ctx, &nfds, $0.baseAddress! + 1, &timeout, now) }
            if rc == ERROR_BUFFERFULL.rawValue {
                fds = [pollfd](repeating: pollfd(), count: Int(nfds) + 1)
                continue
            }
            if rc != 0 {
                vmm.host.log(ODY_LOG_ERROR, "libxl_osevent_beforepoll failed (rc \(rc)); retrying")
                MonotonicClock.sleep(seconds: 0.5)
                continue
            }
            fds[0] = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            for i in 1...Int(nfds) where nfds > 0 { fds[i].revents = 0 }
            if poll(&fds, nfds_t(nfds + 1), timeout) < 0 && errno != EINTR {
                vmm.host.log(ODY_LOG_ERROR, "poll: \(String(cString: strerror(errno)))")
            }
            if fds[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 64)
                while read(wakeRead, &sink, sink.count) > 0 {}
            }
            gettimeofday(&now, nil)
            fds.withUnsafeBufferPointer { xl.libxl_osevent_afterpoll(ctx, nfds, $0.baseAddress! + 1, now) }
        }
    }

    private func handleQueue() {
        let items = lock.with { () -> [Pending] in defer { queue.removeAll() }; return queue }
        for e in items {
            let name = vmm.lock.with { vmm.watches[e.domid]?.name } ?? vmm.name(of: e.domid) ?? "domid \(e.domid)"
            switch e.type {
            case LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN:
                let r = Int32(Int8(bitPattern: e.reason))
                let crashed = r == LIBXL_SHUTDOWN_REASON_CRASH.rawValue || r == LIBXL_SHUTDOWN_REASON_WATCHDOG.rawValue
                vmm.host.emitLifecycle(domain: name, state: crashed ? ODY_STATE_CRASHED : ODY_STATE_HALTING, detail: r,
                                       message: "xen shutdown, reason \(reasonName(r))")
                vmm.log.reset()
                let rc = xl.libxl_domain_destroy(vmm.ctx, e.domid, nil)
                if rc != 0 && rc != ERROR_DOMAIN_NOTFOUND.rawValue {
                    vmm.host.log(ODY_LOG_ERROR, "destroying \(name) after its shutdown failed: libxl error \(rc) \(vmm.log.takeErrors() ?? "")")
                }
            case LIBXL_EVENT_TYPE_DOMAIN_DEATH:
                vmm.unwatch(domid: e.domid)
                vmm.host.emitLifecycle(domain: name, state: ODY_STATE_HALTED, message: "xen domain \(e.domid) destroyed")
                vmm.removeRunFiles(of: name)
            default:
                break
            }
        }
    }

    private func reasonName(_ r: Int32) -> String {
        switch r {
        case LIBXL_SHUTDOWN_REASON_POWEROFF.rawValue: "poweroff"
        case LIBXL_SHUTDOWN_REASON_REBOOT.rawValue: "reboot"
        case LIBXL_SHUTDOWN_REASON_SUSPEND.rawValue: "suspend"
        case LIBXL_SHUTDOWN_REASON_CRASH.rawValue: "crash"
        case LIBXL_SHUTDOWN_REASON_WATCHDOG.rawValue: "watchdog"
        case LIBXL_SHUTDOWN_REASON_SOFT_RESET.rawValue: "soft reset"
        default: "unknown (\(r))"
        }
    }
}

/// libxl's event_occurs hook: the event is ours to free.
private let xenEventOccurs: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<libxl_event>?) -> Void = { user, ev in
    guard let user, let ev else { return }
    let t = Unmanaged<XenEventThread>.fromOpaque(user).takeUnretainedValue()
    t.enqueue(ev.pointee)
    t.xl.libxl_event_free(t.ctx, ev)
}

/// libxl's disaster hook: must not call libxl; log and go on.
private let xenEventDisaster: @convention(c) (UnsafeMutableRawPointer?, libxl_event_type, UnsafePointer<CChar>?, Int32) -> Void = {
    user, type, msg, errnoval in
    guard let user else { return }
    Unmanaged<XenEventThread>.fromOpaque(user).takeUnretainedValue()
        .disaster(type, msg.map { String(cString: $0) } ?? "", errnoval)
}
