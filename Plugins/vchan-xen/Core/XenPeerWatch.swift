// Ends the channels of a peer domain that was destroyed without closing them.
// Such a peer never signals again and its live flag in the ring stays set,
// so without this a read would block for ever (issue 13: `xl destroy` of a
// domU under a running session). One thread per backend, started with the
// first watched channel, on its own xenstore connection:
//  - a watch on @releaseDomain (xenstored fires it when Xen releases any
//    domain) wakes it at once;
//  - it also looks every `recheckMs` whatever happened, so a missed or late
//    watch costs at most that long (the toolstack removes
//    /local/domain/<id> while destroying; the order against @releaseDomain
//    is its own).
// A peer is gone when /local/domain/<its id> no longer exists; then its
// channels are told (XenChannel.peerDied: EOF, and the blocked waiter woken).
// Domain ids are not reused while the hypervisor has ids left, so a new
// domain does not pass for a dead one.
import CXenvchan
import Glibc
import PluginABI

public final class XenPeerWatch: @unchecked Sendable {
    let api: XenVchanAPI
    /// How often the peers are looked at without a watch event.
    public let recheckMs: Int32
    private let lock = XenLock()
    private var channels: [ObjectIdentifier: Watched] = [:]
    private var started = false
    private var stopped = false

    private struct Watched { weak var channel: XenChannel?; let peer: Int32 }

    public init(api: XenVchanAPI, recheckMs: Int32 = 2000) {
        self.api = api; self.recheckMs = recheckMs
    }

    func register(_ c: XenChannel) {
        let start = lock.with { () -> Bool in
            channels[ObjectIdentifier(c)] = Watched(channel: c, peer: c.peerDomid)
            defer { started = true }
            return !started
        }
        if start { startThread() }
    }

    func unregister(_ c: XenChannel) { lock.with { _ = channels.removeValue(forKey: ObjectIdentifier(c)) } }

    /// The thread ends at its next wake-up (within recheckMs).
    public func stop() { lock.with { stopped = true } }

    private func startThread() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let w = Unmanaged<XenPeerWatch>.fromOpaque(arg!).takeRetainedValue()
            w.run()
            return nil
        }, box)
        if rc == 0 { pthread_detach(t) } else {
            Unmanaged<XenPeerWatch>.fromOpaque(box).release()
            lock.with { started = false }   // the next channel tries again
        }
    }

    private func run() {
        // Its own connection: the backend's is used by other threads, and a
        // watch's events arrive on the connection that set it.
        guard let h = api.xs_open(0) else { pollOnly(); return }
        defer { api.xs_close(h) }
        guard api.xs_watch(h, "@releaseDomain", "odyssey-peer-watch") else { pollOnly(); return }
        let fd = api.xs_fileno(h)
        while !lock.with({ stopped }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, recheckMs) > 0 {
                // Drain every queued event (each is a malloc'd vector).
                while let ev = api.xs_check_watch(h) { free(ev) }
            }
            check(h)
        }
    }

    /// Without a watch (xenstored refused it): the periodic look alone.
    private func pollOnly() {
        guard let h = api.xs_open(0) else { return }
        defer { api.xs_close(h) }
        while !lock.with({ stopped }) {
            usleep(UInt32(recheckMs) * 1000)
            check(h)
        }
    }

    private func check(_ h: OpaquePointer) {
        let watched = lock.with { channels.values.compactMap { w in w.channel.map { ($0, w.peer) } } }
        var alive: [Int32: Bool] = [:]
        for (channel, peer) in watched {
            let up = alive[peer] ?? exists(h, peer)
            alive[peer] = up
            if !up { channel.peerDied() }
        }
    }

    private func exists(_ h: OpaquePointer, _ domid: Int32) -> Bool {
        var len: UInt32 = 0
        guard let v = api.xs_read(h, ODY_XS_TRANSACTION_NONE, "/local/domain/\(domid)", &len) else { return errno != ENOENT }
        free(v)
        return true
    }
}
