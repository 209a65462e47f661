// admin.vm.volume.{List,Info,ListSnapshots,Revert,Resize} and admin.pool.{List,Info}.
// Info lines are `key=value` in qubesd's order.
import Domains

extension QubesAPI {
    func storageMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.volume.List", argument: .none, scope: .local, access: .read) { [self] c throws(AdminError) in
                QubesAPI.lines(try domain { () throws(DomainError) in try daemon.volumes.volumeNames(of: c.dest, in: store.snapshot()) })
            },
            AdminMethod("admin.vm.volume.Info", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                let snap = store.snapshot()
                try checkVolume(c, snap)
                return Array(try domain { () throws(DomainError) in try daemon.volumes.info(c.argument, of: c.dest, in: snap) }.qubesInfo.utf8)
            },
            AdminMethod("admin.vm.volume.ListSnapshots", argument: .required, scope: .local, access: .read) { [self] c throws(AdminError) in
                try checkVolume(c, store.snapshot())
                return QubesAPI.lines(try domain { () throws(DomainError) in try daemon.volumes.revisions(of: c.dest, volume: c.argument) })
            },
            AdminMethod("admin.vm.volume.Revert", argument: .required, payload: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                let snap = store.snapshot()
                try checkVolume(c, snap)
                let revision = try QubesAPI.text(c.payload).trimmingSpaces
                let all = try domain { () throws(DomainError) in try daemon.volumes.revisions(of: c.dest, volume: c.argument) }
                guard all.contains(revision) else { throw .protocolError("no revision '\(revision)' of \(c.dest):\(c.argument)") }
                let running = lifecycle.powerState(c.dest) != .halted
                try domain { () throws(DomainError) in
                    try daemon.volumes.revert(c.dest, volume: c.argument, to: revision, isRunning: running, in: snap)
                }
                return []
            },
            AdminMethod("admin.vm.volume.Set.revisions_to_keep", argument: .required, payload: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                try checkVolume(c, store.snapshot())
                let text = try QubesAPI.text(c.payload).trimmingSpaces
                guard !text.isEmpty, text.count < 4, text.allSatisfy(\.isASCII), let n = Int(text), String(n) == text else {
                    throw .protocolError("revisions_to_keep must be a number without leading zeros")
                }
                try domain { () throws(DomainError) in try store.setRevisionsToKeep(volume: c.argument, of: c.dest, to: n) }
                return []
            },
            AdminMethod("admin.vm.volume.Resize", argument: .required, payload: .required, scope: .local, access: .write) { [self] c throws(AdminError) in
                // qubesd: the payload is the new size in bytes, decimal; a volume only grows.
                let snap = store.snapshot()
                try checkVolume(c, snap)
                let text = String(decoding: c.payload, as: UTF8.self)
                guard text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let bytes = Int64(text) else {
                    throw .protocolError("Invalid size: expected a decimal number of bytes")
                }
                try domain { () throws(DomainError) in try daemon.volumes.resize(c.argument, of: c.dest, to: bytes, in: snap) }
                return []
            },
            AdminMethod("admin.pool.ListDrivers", argument: .none, destination: .adminVM, scope: .global, access: .read) { _ in
                QubesAPI.lines(["odyssey-dir dir_path revisions_to_keep"])
            },
            AdminMethod("admin.pool.List", argument: .none, destination: .adminVM, scope: .global, access: .read) { _ in
                QubesAPI.lines([VolumeManager.pool])
            },
            AdminMethod("admin.pool.Info", argument: .required, destination: .adminVM, scope: .global, access: .read) { [self] c throws(AdminError) in
                guard c.argument == VolumeManager.pool else { throw .protocolError("no pool '\(c.argument)'") }
                return QubesAPI.lines(daemon.volumes.poolInfo().map { "\($0.0)=\($0.1)" })
            },
        ]
    }

    /// qubesd: a volume name the domain does not have is a ProtocolError (after the domain exists).
    private func checkVolume(_ c: AdminCall, _ snap: DomainsSnapshot) throws(AdminError) {
        let names = try domain { () throws(DomainError) in try daemon.volumes.volumeNames(of: c.dest, in: snap) }
        guard names.contains(c.argument) else { throw .protocolError("\(c.dest) has no volume '\(c.argument)'") }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
