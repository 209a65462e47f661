// admin.vm.{Start,Shutdown,Pause,Unpause,Kill} through daemon.lifecycle, with
// the lifecycle events admin.Events subscribers see. State errors use the
// Qubes exception types (QubesVMNotStartedError, QubesVMNotRunningError,
// QubesVMNotPausedError) with qubesd's wording ("Domain is powered off: 'work'"),
// which users and scripts know.
import Domains

extension QubesAPI {
    func lifecycleMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.Start", argument: .none, scope: .local, access: .execute) { [self] c throws(AdminError) in
                let name = try runnable(c)
                // As qubesd (its client catches this error to mean "already running").
                let st = lifecycle.powerState(name)
                guard st == .halted else {
                    throw AdminError("QubesVMNotHaltedError", "Domain is not powered off: '\(name)'")
                }
                hub.lifecycle(name, "domain-pre-start")
                do throws(OdysseyError) { try lifecycle.start(name) } catch {
                    hub.lifecycle(name, "domain-start-failed", [("reason", error.description)])
                    throw startError(error)
                }
                // qubesd: domain-spawn once the domain exists, domain-start once it is up;
                // here both once lifecycle.start has returned.
                hub.lifecycle(name, "domain-spawn")
                hub.lifecycle(name, "domain-start")
                return []
            },
            AdminMethod("admin.vm.Shutdown", argument: .optional, scope: .local, access: .execute) { [self] c throws(AdminError) in
                let flags = c.argument.isEmpty ? [] : c.argument.split(separator: "+").map(String.init)
                guard flags.allSatisfy({ $0 == "force" || $0 == "wait" }) else { throw .protocolError("Shutdown takes force and/or wait") }
                let name = try runnable(c)
                guard lifecycle.powerState(name) != .halted else { throw notStarted(name) }
                let wait = flags.contains("wait")
                do throws(OdysseyError) { try lifecycle.shutdown(name, wait: wait) } catch { throw error.adminError }
                if wait { hub.lifecycle(name, "domain-shutdown") }
                return []
            },
            AdminMethod("admin.vm.Kill", argument: .none, scope: .local, access: .execute) { [self] c throws(AdminError) in
                let name = try runnable(c)
                guard lifecycle.powerState(name) != .halted else { throw notStarted(name) }
                do throws(OdysseyError) { try lifecycle.kill(name) } catch { throw error.adminError }
                hub.lifecycle(name, "domain-shutdown")
                return []
            },
            AdminMethod("admin.vm.Pause", argument: .none, scope: .local, access: .execute) { [self] c throws(AdminError) in
                let name = try runnable(c)
                let st = lifecycle.powerState(name)
                guard st == .running else {
                    throw AdminError("QubesVMNotRunningError", "Domain not running (either powered off or paused): '\(name)'")
                }
                do throws(OdysseyError) { try lifecycle.pause(name) } catch { throw error.adminError }
                hub.lifecycle(name, "domain-paused")
                return []
            },
            AdminMethod("admin.vm.Unpause", argument: .none, scope: .local, access: .execute) { [self] c throws(AdminError) in
                let name = try runnable(c)
                guard lifecycle.powerState(name) == .paused else { throw AdminError("QubesVMNotPausedError", "Domain is not paused: '\(name)'") }
                do throws(OdysseyError) { try lifecycle.unpause(name) } catch { throw error.adminError }
                hub.lifecycle(name, "domain-unpaused")
                return []
            },
        ]
    }

    /// The destination exists and is not the admin domain.
    private func runnable(_ c: AdminCall) throws(AdminError) -> String {
        if c.destIsAdmin { throw AdminError("QubesVMError", "dom0 is the admin domain: it always runs and cannot be started or stopped") }
        _ = try existing(c.dest)
        return c.dest
    }

    private func notStarted(_ name: String) -> AdminError { AdminError("QubesVMNotStartedError", "Domain is powered off: '\(name)'") }

    /// qubesd reports a failed start as `Start failed: ...`; store errors keep their type.
    private func startError(_ e: OdysseyError) -> AdminError {
        if let cause = e.cause, cause.hasPrefix("Qubes") { return AdminError(cause, e.message) }
        return AdminError("QubesException", "Start failed: \(e.description)")
    }
}
