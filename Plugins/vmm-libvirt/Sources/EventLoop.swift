// libvirt's default event loop, once per process: libvirt keeps one event
// implementation per process and offers no way to unregister it, so the
// loop thread lives as long as the process (plugins are never unloaded).
// Lifecycle callbacks run on that thread and go to the host through
// HostServices.emitLifecycle, which may be called from any thread.
import CLibvirt
import Glibc
import PluginABI
import PluginKit

enum LibvirtRuntime {
    /// Initialises libvirt and starts the loop thread; run once per process
    /// by LibvirtAPI.shared (a failure there is retried by the next open).
    static func start(_ api: LibvirtAPI) throws(LibraryError) {
        guard api.virInitialize() == 0 else { try LibraryError.raise("libvirt: virInitialize failed") }
        // libvirt prints every error to stderr unless a handler is set; ours
        // reach the host through ody_error instead, so stay quiet.
        api.virSetErrorFunc(nil, { _, _ in })
        guard api.virEventRegisterDefaultImpl() == 0 else {
            try LibraryError.raise("libvirt: virEventRegisterDefaultImpl failed: " + (api.virGetLastErrorMessage().map { String(cString: $0) } ?? ""))
        }
        var tid = pthread_t()
        // The thread holds its own reference on the table; it never ends.
        let arg = Unmanaged.passRetained(api).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let api = Unmanaged<LibvirtAPI>.fromOpaque(arg!).takeUnretainedValue()
            while true {
                if api.virEventRunDefaultImpl() < 0 { MonotonicClock.sleep(seconds: 0.1) }
            }
        }, arg)
        guard rc == 0 else {
            Unmanaged<LibvirtAPI>.fromOpaque(arg).release()
            try LibraryError.raise("libvirt: cannot start the event thread: \(String(cString: strerror(rc)))")
        }
        pthread_detach(tid)
    }
}

/// libvirt lifecycle event types and details as ody power states and words.
enum LifecycleMap {
    static let eventNames = ["defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown",
                             "pmsuspended", "crashed"]

    /// nil: the event says nothing about the power state (e.g. a redefinition).
    static func state(event: Int32, detail: Int32) -> ody_power_state? {
        switch UInt32(bitPattern: event) {
        // A new definition is no power change: reported as Halted, it read
        // as "stopped" to the host (a disposable defined and started in one
        // go was destroyed mid-start; Admin API clients saw domain-shutdown).
        case VIR_DOMAIN_EVENT_DEFINED.rawValue: return nil
        case VIR_DOMAIN_EVENT_UNDEFINED.rawValue: return ODY_STATE_NA
        case VIR_DOMAIN_EVENT_STARTED.rawValue, VIR_DOMAIN_EVENT_RESUMED.rawValue: return ODY_STATE_RUNNING
        case VIR_DOMAIN_EVENT_SUSPENDED.rawValue: return ODY_STATE_PAUSED
        case VIR_DOMAIN_EVENT_STOPPED.rawValue:
            // FAILED: the emulator died (e.g. QEMU killed from outside); CRASHED: the guest did.
            switch UInt32(bitPattern: detail) {
            case VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue, VIR_DOMAIN_EVENT_STOPPED_FAILED.rawValue: return ODY_STATE_CRASHED
            default: return ODY_STATE_HALTED
            }
        case VIR_DOMAIN_EVENT_SHUTDOWN.rawValue: return ODY_STATE_HALTING
        case VIR_DOMAIN_EVENT_PMSUSPENDED.rawValue: return ODY_STATE_SUSPENDED
        case VIR_DOMAIN_EVENT_CRASHED.rawValue: return ODY_STATE_CRASHED
        default: return nil
        }
    }

    /// VIR_DOMAIN_EVENT_STOPPED_* in order: how a domain went off.
    static let stoppedDetails = ["shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from snapshot"]

    static func describe(event: Int32, detail: Int32) -> String {
        let e = event >= 0 && Int(event) < eventNames.count ? eventNames[Int(event)] : "event \(event)"
        if UInt32(bitPattern: event) == VIR_DOMAIN_EVENT_STOPPED.rawValue, detail >= 0, Int(detail) < stoppedDetails.count {
            return "libvirt stopped: \(stoppedDetails[Int(detail)])"
        }
        return "libvirt \(e) (detail \(detail))"
    }
}

/// The C callback libvirt calls on the loop thread. `opaque` is a retained
/// LibvirtVmm, released by `lifecycleRelease` when libvirt drops the callback.
let lifecycleCallback: @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
    _, dom, event, detail, opaque in
    guard let dom, let opaque else { return 0 }
    let vmm = Unmanaged<LibvirtVmm>.fromOpaque(opaque).takeUnretainedValue()
    guard let np = vmm.virt.virDomainGetName(dom) else { return 0 }
    vmm.deliverLifecycle(domain: String(cString: np), event: event, detail: detail)
    return 0
}

let lifecycleRelease: @convention(c) (UnsafeMutableRawPointer?) -> Void = { opaque in
    guard let opaque else { return }
    Unmanaged<LibvirtVmm>.fromOpaque(opaque).release()
}
