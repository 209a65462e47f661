// One vchan over libxenvchan: a ring in a granted page (the server's),
// an event channel to the peer domain. libxenvchan's own blocking mode is
// never used: its blocking write moves ALL bytes (libvchan's write is
// partial) and its blocking read on a closed ring is an error (ours is EOF).
// The channel is non-blocking and this file blocks instead:
//  - one thread at a time (the "primary" waiter) blocks in libxenvchan_wait,
//    a read of the event channel's fd, as libxenvchan itself would: no extra
//    system call per wake-up (under Xen every one is a trip through the
//    hypervisor; a poll() before each read cost 1.30x raw on round trips);
//  - a second thread waiting on the same channel at the same time (a reader
//    and a writer) polls the fd in slices without consuming, and looks at
//    the ring again after each: an event the primary consumed costs it at
//    most one slice, never a hang.
// A peer domain destroyed without closing never signals again, and its live
// flag in the ring stays set: the primary would block for ever. So the
// channel can wake itself: kick() binds (once, lazily) a loopback pair of
// event-channel ports on the channel's own handle and notifies it, which
// makes the blocked read of the event fd return. XenPeerWatch calls
// peerDied() (then kick) when the peer's domain is gone; close() kicks too.
// The fast path is unchanged: no extra system call per wake-up.
import CXenvchan
import Glibc
import PluginABI

public final class XenChannel: @unchecked Sendable {
    let api: XenVchanAPI
    let ctrl: UnsafeMutablePointer<libxenvchan>
    let isServer: Bool
    /// What to name in errors: "dom0->work:512 (domid 3)".
    public let label: String
    /// The event channel's fd (fd_for_poll).
    public let eventFD: Int32
    /// A server's xenstore entries, removed once its client is connected (as
    /// Qubes' libvchan does): nobody else can then find the ring.
    private var advertised: (store: XenStore, path: String)?
    private let lock = XenLock()
    private var closed = false
    /// A thread is blocked reading the event channel (the primary waiter).
    private var primaryWaiting = false
    /// The domain at the other end, and this one (for the loopback kick).
    public let peerDomid: Int32
    let ownDomid: Int32
    /// The peer's domain is gone (XenPeerWatch): the channel is DISCONNECTED.
    private var peerGone = false
    /// The port notified to wake this channel's own waiter (bound on first kick).
    private var kickPort: Int32?
    private weak var watch: XenPeerWatch?

    /// How long a second waiter's poll lasts before it looks at the ring again.
    static let sliceMs: Int32 = 20

    init(api: XenVchanAPI, ctrl: UnsafeMutablePointer<libxenvchan>, isServer: Bool, label: String,
         advertised: (store: XenStore, path: String)?, peer: Int32, own: Int32, watch: XenPeerWatch?) throws(XenVchanError) {
        // Checked before self is whole: a throw here runs no deinit (no double close).
        let fd = api.fd_for_select(ctrl)
        guard fd >= 0 else { api.close(ctrl); throw XenVchanError(ODY_E_BACKEND, "\(label): libxenvchan has no event channel fd") }
        self.api = api; self.ctrl = ctrl; self.isServer = isServer; self.label = label; self.advertised = advertised
        peerDomid = peer; ownDomid = own
        eventFD = fd
        ody_xenvchan_set_nonblocking(ctrl)
        // A peer in the same domain dies with this process; any other is watched.
        if let watch, peer != own { self.watch = watch; watch.register(self) }
    }

    /// The last reference gone (no operation can be running): the ring is
    /// unshared or unmapped and the peer notified. libxenvchan_close also
    /// removes a server's xenstore entries if they are still there.
    deinit { watch?.unregister(self); api.close(ctrl) }

    /// close(): operations still running in other threads end with CLOSED
    /// (the primary is kicked, a second waiter sees it within a slice); the
    /// peer learns of it when the ring goes (deinit).
    public func close() {
        lock.with { closed = true }
        kick()
    }

    /// The peer's domain no longer exists: reads end (EOF once the ring is
    /// drained), writes and waits fail, and a blocked waiter is woken.
    public func peerDied() {
        let first = lock.with { () -> Bool in defer { peerGone = true }; return !peerGone }
        if first { kick() }
    }

    public var isPeerGone: Bool { lock.with { peerGone } }

    /// Wakes the primary waiter: an event on a loopback pair of ports bound
    /// on this channel's own event-channel handle (the read of eventFD
    /// returns that port; libxenvchan_wait unmasks it). Bound on first use,
    /// unbound with the handle when the channel closes.
    func kick() {
        let port: Int32? = lock.with {
            if let p = kickPort { return p }
            let h = ody_xenvchan_event_handle(ctrl)
            let a = api.evtchn_bind_unbound_port(h, UInt32(ownDomid))
            guard a >= 0 else { return nil }
            let b = api.evtchn_bind_interdomain(h, UInt32(ownDomid), UInt32(a))
            guard b >= 0 else { return nil }
            kickPort = Int32(b)
            return Int32(b)
        }
        if let port { _ = api.evtchn_notify(ody_xenvchan_event_handle(ctrl), UInt32(port)) }
    }

    private var isClosed: Bool { lock.with { closed } }

    private func checkOpen(_ op: String) throws(XenVchanError) {
        if isClosed { throw XenVchanError(ODY_E_CLOSED, "\(op) \(label): the channel is closed") }
    }

    // MARK: state

    public var state: ody_vchan_state {
        if isPeerGone { return ODY_VCHAN_DISCONNECTED }
        let raw = api.is_open(ctrl)
        let s: ody_vchan_state = switch raw {
        case 1: ODY_VCHAN_CONNECTED
        case 2 where isServer: ODY_VCHAN_WAITING
        default: ODY_VCHAN_DISCONNECTED
        }
        if s == ODY_VCHAN_CONNECTED { forgetAdvertisement() }
        return s
    }

    private func forgetAdvertisement() {
        guard let a = lock.with({ () -> (store: XenStore, path: String)? in defer { advertised = nil }; return advertised }) else { return }
        a.store.remove(a.path)
    }

    /// Bytes readable now (also asks the peer to notify on its next write).
    public var dataReady: Int { max(0, Int(api.data_ready(ctrl))) }
    /// Bytes writable now (also asks the peer to notify when it reads).
    public var bufferSpace: Int { max(0, Int(api.buffer_space(ctrl))) }

    // MARK: waiting

    /// Becomes the primary waiter if nobody is; false if another thread is.
    private func claimPrimary() -> Bool {
        lock.with { () -> Bool in if primaryWaiting { return false }; primaryWaiting = true; return true }
    }
    private func releasePrimary() { lock.with { primaryWaiting = false } }

    private func eventPending(timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: eventFD, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, timeoutMs) == 1
    }

    /// Consumes a pending event without blocking; true if there was one.
    private func consumePendingEvent() -> Bool {
        guard claimPrimary() else { return false }
        defer { releasePrimary() }
        guard eventPending(timeoutMs: 0) else { return false }
        _ = api.wait(ctrl)   // readable, and only the primary reads: does not block
        return true
    }

    /// Consumes the pending event if there is one, never blocking (a caller
    /// that polls eventFD itself, as VchanPump does, calls this when it is readable).
    public func consumeEvent() { _ = consumePendingEvent() }

    /// Blocks until the peer signals (the primary: consumes the event and
    /// unmasks the port) or, for a second waiter, at most one slice.
    private func awaitEvent() {
        if claimPrimary() {
            _ = api.wait(ctrl)
            releasePrimary()
        } else {
            _ = eventPending(timeoutMs: XenChannel.sliceMs)
        }
    }

    /// wait: returns at once when an event is pending (consuming it), data is
    /// ready or the peer is gone; else blocks until the peer signals (reading
    /// data_ready and buffer_space first asks it to signal on either).
    public func wait() throws(XenVchanError) {
        try checkOpen("wait")
        if consumePendingEvent() { return }
        let before = (state, dataReady, bufferSpace)
        if before.1 > 0 || before.0 == ODY_VCHAN_DISCONNECTED { return }
        awaitEvent()
        try checkOpen("wait")
    }

    // MARK: I/O

    /// Partial read: blocks until at least one byte; 0 at EOF (the peer
    /// closed and everything it sent was read).
    public func read(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(XenVchanError) -> Int {
        let want = min(size, Int(Int32.max))
        while true {
            try checkOpen("read")
            let n = api.read(ctrl, buf, want)
            if n > 0 { return Int(n) }
            if state == ODY_VCHAN_DISCONNECTED {
                // libxenvchan_read reports a closed, empty ring as -1: that is EOF here.
                if dataReady == 0 { return 0 }
                continue
            }
            if n < 0 { throw XenVchanError.call("read \(label)", errno: errno) }
            awaitEvent()
        }
    }

    /// Partial write: blocks until at least one byte fits; CLOSED once the peer is gone.
    public func write(_ buf: UnsafeRawPointer, _ size: Int) throws(XenVchanError) -> Int {
        let want = min(size, Int(Int32.max))
        while true {
            try checkOpen("write")
            if state == ODY_VCHAN_DISCONNECTED { throw XenVchanError(ODY_E_CLOSED, "write \(label): the peer closed the channel") }
            let n = api.write(ctrl, buf, want)
            if n > 0 { return Int(n) }
            if n < 0 { throw XenVchanError.call("write \(label)", errno: errno) }
            awaitEvent()
        }
    }

    /// Exactly `size` bytes, whatever the ring's size (libxenvchan_recv fails
    /// when size exceeds the ring; this loops over partial reads).
    public func recvAll(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(XenVchanError) {
        var done = 0
        while done < size {
            let n = try read(buf + done, size - done)
            if n == 0 { throw XenVchanError(ODY_E_CLOSED, "recv \(label): the peer closed after \(done) of \(size) bytes") }
            done += n
        }
    }

    public func sendAll(_ buf: UnsafeRawPointer, _ size: Int) throws(XenVchanError) {
        var done = 0
        while done < size { done += try write(buf + done, size - done) }
    }
}

/// A mutex for the channel's own flags (Glibc only: the static agent links this too).
final class XenLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() { m = .allocate(capacity: 1); pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func with<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
