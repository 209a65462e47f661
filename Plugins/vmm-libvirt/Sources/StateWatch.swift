// The state watch: a safety net under libvirt's lifecycle events. libvirtd
// can stop sending events while its connections stay up (seen with libvirt
// 9.0 here: after a while its QEMU driver queued no event for any client,
// `virsh event --all` included), and events are lost while libvirtd
// restarts. Without one, a QEMU killed from outside stayed Transient for
// ever and its volumes were never cleaned. So each instance's own thread
// reads its domains' states every `state_poll_interval` seconds and reports
// a change no event reported. Events stay the fast path; the last state each
// path reported is shared, so a change is reported once.
import CLibvirt
import Glibc
import PluginABI
import PluginKit

/// What was last reported for each domain (by an event or by the watch).
final class ReportedStates: @unchecked Sendable {
    private let lock = PluginLock()
    private var last: [String: ody_power_state] = [:]

    /// Records `state`; true if the watch should report it: it differs from
    /// the last report. Not reported: a domain still starting (its Running
    /// follows), one that still reads on after Halting was reported (a
    /// shutdown in progress), and a domain seen for the first time (recorded
    /// only; domains present at connect are recorded then, see `seed`).
    func claimPolled(_ name: String, _ state: ody_power_state) -> Bool {
        lock.with {
            if state == ODY_STATE_TRANSIENT { return false }
            guard let prev = last[name] else { last[name] = state; return false }
            if prev == state || prev == ODY_STATE_HALTING && Self.isOn(state) { return false }
            last[name] = state
            return true
        }
    }

    /// A state reported by an event (or known, e.g. a new definition): remembered so the watch does not repeat it.
    func record(_ name: String, _ state: ody_power_state) { lock.with { last[name] = state } }

    func forget(_ name: String) { _ = lock.with { last.removeValue(forKey: name) } }

    static func isOn(_ s: ody_power_state) -> Bool {
        s != ODY_STATE_HALTED && s != ODY_STATE_CRASHED && s != ODY_STATE_NA
    }
}

enum StateWatch {
    /// The watch's view of a domain's state: like get_info, except that a
    /// domain that went off because its emulator or guest died is Crashed
    /// (the state an event would have said).
    static func state(_ state: Int32, _ reason: Int32) -> ody_power_state {
        if UInt32(bitPattern: state) == VIR_DOMAIN_SHUTOFF.rawValue,
           [VIR_DOMAIN_SHUTOFF_CRASHED.rawValue, VIR_DOMAIN_SHUTOFF_FAILED.rawValue].contains(UInt32(bitPattern: reason)) {
            return ODY_STATE_CRASHED
        }
        return LibvirtVmm.powerState(state, reason)
    }

    /// The libvirt event type the change stands for (the detail an event would carry).
    static func eventType(_ s: ody_power_state) -> Int32 {
        let e: virDomainEventType = switch s {
        case ODY_STATE_RUNNING, ODY_STATE_TRANSIENT: VIR_DOMAIN_EVENT_STARTED
        case ODY_STATE_PAUSED: VIR_DOMAIN_EVENT_SUSPENDED
        case ODY_STATE_HALTING: VIR_DOMAIN_EVENT_SHUTDOWN
        case ODY_STATE_SUSPENDED: VIR_DOMAIN_EVENT_PMSUSPENDED
        default: VIR_DOMAIN_EVENT_STOPPED
        }
        return Int32(bitPattern: e.rawValue)
    }

    /// A shut-off reason (VIR_DOMAIN_SHUTOFF_*) is the stopped event's detail + 1.
    static func message(_ state: Int32, _ reason: Int32, _ ody: ody_power_state) -> String {
        if UInt32(bitPattern: state) == VIR_DOMAIN_SHUTOFF.rawValue, reason >= 1, Int(reason) <= LifecycleMap.stoppedDetails.count {
            return "libvirt stopped: \(LifecycleMap.stoppedDetails[Int(reason) - 1]) (seen by the state watch; no event came)"
        }
        return "libvirt state \(ody.name) (seen by the state watch; no event came)"
    }

    /// Starts the instance's watch thread; it holds a reference on the
    /// instance and ends at the first tick after close().
    static func start(_ vmm: LibvirtVmm, interval: Double) {
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(vmm).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let vmm = Unmanaged<LibvirtVmm>.fromOpaque(arg!).takeRetainedValue()
            while vmm.watchTick() { MonotonicClock.sleep(seconds: vmm.stateWatchInterval) }
            return nil
        }, arg)
        guard rc == 0 else {
            Unmanaged<LibvirtVmm>.fromOpaque(arg).release()
            vmm.host.log(ODY_LOG_WARNING, "cannot start the state watch (\(String(cString: strerror(rc)))); only libvirt's events report state changes")
            return
        }
        pthread_detach(tid)
    }
}

extension LibvirtVmm {
    /// One look at every domain of ours (those with a start plan); false once the instance is closed.
    func watchTick() -> Bool {
        if isClosed { return false }
        guard isConnected else { return true }  // nothing of ours to watch before the first operation
        var seen: [(String, Int32, Int32)] = []
        _ = withConnection("state watch", nil) { c in
            let listed = virt.forEachDomain(c) { d, name in
                guard cachedPlan(name) != nil else { return }  // not ours
                var state: Int32 = 0, reason: Int32 = 0
                guard virt.virDomainGetState(d, &state, &reason, 0) == 0 else { virt.virResetLastError(); return }
                seen.append((name, state, reason))
            }
            guard listed else { virt.virResetLastError(); return ODY_E_BACKEND.rawValue }
            return ODY_OK.rawValue
        }
        for (name, state, reason) in seen {
            let ody = StateWatch.state(state, reason)
            guard reported.claimPolled(name, ody) else { continue }
            if !ReportedStates.isOn(ody) { removeRunFiles(name, cachedPlan(name)) }
            host.emitLifecycle(domain: name, state: ody, detail: StateWatch.eventType(ody), message: StateWatch.message(state, reason, ody))
        }
        return true
    }
}
