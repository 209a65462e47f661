// Devices and pools as far as Odyssey has them:
// - admin.deviceclass.List and admin.vm.device.<class>.* for Qubes' classes:
//   no domain exposes devices yet, so every listing is empty; attaching or
//   assigning names a device that does not exist (DeviceNotFound), detaching
//   or changing one that is not there is DeviceNotAssigned (both Qubes
//   exceptions the tools report).
// - admin.vm.CreateInPool.<Class>: admin.vm.Create with `pool=P` or
//   `pool:VOLUME=P`; the one pool is VolumeManager.pool.
import Domains

extension QubesAPI {
    static let deviceClasses = ["block", "mic", "pci", "usb"]

    func devicePoolMethods() -> [AdminMethod] {
        var out = [
            AdminMethod("admin.deviceclass.List", argument: .none, destination: .adminVM, scope: .global, access: .read) { _ in
                QubesAPI.lines(QubesAPI.deviceClasses)
            },
            AdminMethod("admin.vm.device.denied.List", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                _ = try existing(c.dest)
                return []
            },
        ]
        for devclass in Self.deviceClasses {
            let prefix = "admin.vm.device.\(devclass)."
            for listing in ["Available", "Assigned", "Attached"] {
                out.append(AdminMethod(prefix + listing, argument: .optional, scope: .local, access: .read) { [self] c throws(AdminError) in
                    _ = try existing(c.dest)
                    return []
                })
            }
            for change in ["Attach", "Assign"] {
                out.append(AdminMethod(prefix + change, argument: .required, payload: .optional, destination: .notAdminVM,
                                       scope: .local, access: .write) { [self] c throws(AdminError) in
                    _ = try existing(c.dest)
                    throw AdminError("DeviceNotFound", "No such \(devclass) device: '\(QubesAPI.shown(c.argument))' (no domain exposes \(devclass) devices)")
                })
            }
            for change in ["Detach", "Unassign", "Set.assignment"] {
                out.append(AdminMethod(prefix + change, argument: .required, payload: .optional, destination: .notAdminVM,
                                       scope: .local, access: .write) { [self] c throws(AdminError) in
                    _ = try existing(c.dest)
                    throw AdminError("DeviceNotAssigned", "\(devclass) device '\(QubesAPI.shown(c.argument))' is not assigned to \(c.dest)")
                })
            }
        }
        for klass in DomainClass.allCases where klass.creatable {
            out.append(AdminMethod("admin.vm.CreateInPool.\(klass.rawValue)", argument: .optional, payload: .required,
                                   destination: .adminVM, scope: .global, access: .write) { [self] c throws(AdminError) in
                try create(klass, try QubesAPI.withoutPools(c))
            })
        }
        return out
    }

    /// The call with its `pool=` / `pool:VOLUME=` parameters checked and taken out.
    static func withoutPools(_ c: AdminCall) throws(AdminError) -> AdminCall {
        let text = try text(c.payload)
        var rest: [Substring] = []
        var keys: Set<Substring> = []
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard token.hasPrefix("pool") else { rest.append(token); continue }
            guard let eq = token.firstIndex(of: "="), token[..<eq] == "pool" || token.hasPrefix("pool:") else {
                throw .protocolError("Invalid param name")
            }
            let key = token[..<eq], pool = token[token.index(after: eq)...]
            guard keys.insert(key).inserted else { throw .protocolError("duplicated parameters") }
            // qubesd: one pool for all volumes, or one per volume, not both.
            guard !(keys.contains("pool") && keys.count > 1) else { throw .protocolError("pool= and pool:VOLUME= cannot be combined") }
            if key != "pool" {
                let volume = key.dropFirst("pool:".count)
                guard ["private", "root", "volatile"].contains(volume) else {
                    throw .value("No such volume: '\(shown(String(volume)))' (volumes: private, root, volatile)")
                }
            }
            guard pool == VolumeManager.pool else {
                throw AdminError("StoragePoolException", "No such pool: '\(shown(String(pool)))' (Odyssey has one pool, '\(VolumeManager.pool)')")
            }
        }
        guard !keys.isEmpty else { throw .protocolError("admin.vm.CreateInPool needs pool= or pool:VOLUME=") }
        var r = c.request
        r.payload = Array(rest.joined(separator: " ").utf8)
        return AdminCall(request: r, stream: c.stream)
    }

    /// Untrusted text shown in a message: bounded, printable ASCII only.
    static func shown(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? $0 : "?" }))
    }
}
