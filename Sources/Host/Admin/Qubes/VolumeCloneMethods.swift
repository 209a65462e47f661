// admin.vm.volume.CloneFrom / CloneTo: Qubes' two-step volume copy.
// CloneFrom+VOLUME on the source answers a one-time token; CloneTo+VOLUME on
// the destination with that token as payload copies the data. The token
// stands for the write right on the source volume (CloneFrom needs it, as in
// qubesd), so CloneTo needs only the write right on the destination.
//
// Where Odyssey differs from qubesd: the destination must be halted, and so
// must the source of a root (a running source's private volume is copied as
// of its last stop, as qubesd's pools copy a running volume's last committed
// state); at most VolumeCloneTokens.limit tokens wait
// at once (the oldest is forgotten), and a token dies with its source domain
// (checked by uuid, so a new domain of the same name does not inherit it).
import Domains
import Synchronization

/// The pending clone tokens (in memory: a daemon restart forgets them, as qubesd's do).
final class VolumeCloneTokens: Sendable {
    struct Pending: Sendable, Equatable { let domain: String; let uuid: DomainUUID; let volume: String }

    static let limit = 256
    private let pending = Mutex<[(token: String, source: Pending)]>([])

    func issue(_ source: Pending) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var g = SystemRandomNumberGenerator()
        let token = String((0..<32).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &g)] })
        pending.withLock {
            if $0.count >= Self.limit { $0.removeFirst() }
            $0.append((token, source))
        }
        return token
    }

    /// The token's source, forgotten at once (a token is good for one copy).
    func redeem(_ token: String) -> Pending? {
        pending.withLock { list in
            guard let i = list.firstIndex(where: { $0.token == token }) else { return nil }
            return list.remove(at: i).source
        }
    }
}

extension QubesAPI {
    func volumeCloneMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.volume.CloneFrom", argument: .required, destination: .notAdminVM, scope: .local, access: .write) { [self] c throws(AdminError) in
                let d = try existing(c.dest)
                try checkClonable(c, d)
                return Array(cloneTokens.issue(.init(domain: d.name, uuid: d.uuid, volume: c.argument)).utf8)
            },
            AdminMethod("admin.vm.volume.CloneTo", argument: .required, payload: .required, destination: .notAdminVM,
                        scope: .local, access: .write) { [self] c throws(AdminError) in
                let dst = try existing(c.dest)
                try checkClonable(c, dst)
                guard c.payload.count <= 64, c.payload.allSatisfy({ $0 < 0x80 }) else {
                    throw .protocolError("Token contains non-ASCII characters")
                }
                let token = String(decoding: c.payload, as: UTF8.self).trimmingSpaces
                guard let src = cloneTokens.redeem(token) else {
                    throw AdminError("QubesVolumeCopyTokenNotFoundError", "Token to clone volume of qube was not found")
                }
                let snap = store.snapshot()
                guard let now = try? snap.domain(src.domain), now.uuid == src.uuid else {
                    throw AdminError("QubesVolumeNotFoundError", "The volume to copy is gone: \(src.domain) was removed")
                }
                guard src.volume == c.argument else {
                    throw .value("Cannot copy volume '\(src.volume)' of \(src.domain) onto volume '\(c.argument)' of \(c.dest)")
                }
                // A running source's private volume is copied as of its last stop (VolumeClone.swift).
                let mustBeHalted = c.argument == "root" ? [src.domain, c.dest] : [c.dest]
                for name in mustBeHalted where lifecycle.powerState(name) != .halted {
                    throw AdminError("QubesVMNotHaltedError", "Domain is not powered off: '\(name)'")
                }
                try domain { () throws(DomainError) in try daemon.volumes.cloneVolume(c.argument, from: src.domain, to: dst.name, in: snap) }
                return []
            },
        ]
    }

    /// qubesd: a volume the domain does not have is refused (here also one a clone does not copy).
    private func checkClonable(_ c: AdminCall, _ d: DomainInfo) throws(AdminError) {
        let names = try domain { () throws(DomainError) in try daemon.volumes.volumeNames(of: c.dest, in: store.snapshot()) }
        guard names.contains(c.argument) else { throw .value("\(c.dest) has no volume '\(c.argument)'") }
        guard daemon.volumes.clonableVolume(c.argument, of: d.klass) else {
            throw .value("Volume '\(c.argument)' of \(c.dest) is not kept across restarts; it has nothing to clone")
        }
    }
}
