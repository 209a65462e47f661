// The gui instance: one thread owns the X connection and every domain's
// channel, and waits on them all with poll(2). attach/detach/close come
// from the host's threads; they queue work and wake the loop through a pipe,
// so Xlib is only ever used from the loop thread.
import CX11
import Glibc
import GuiProtocol
import PluginABI
import PluginKit

final class GuiDaemon: @unchecked Sendable {
    private let x: XContext
    private let host: HostServices
    private let limits: GuiLimits
    private let lock = PluginLock()
    // Guarded by `lock`.
    private var attaching: [(name: String, color: UInt32, fd: Int32)] = []
    private var detaching: [String] = []
    private var attachedNames: Set<String> = []
    private var stopping = false
    // Loop thread only.
    private var sessions: [String: DomainSession] = [:]
    private var owners: [Window: (session: DomainSession, window: HostWindow)] = [:]
    private var wake: [Int32] = [-1, -1]
    private var thread = pthread_t()

    init(displayName: String, limits: GuiLimits, host: HostServices) throws(GuiDaemonError) {
        x = try XContext(displayName: displayName)
        self.limits = limits
        self.host = host
        guard pipe(&wake) == 0 else { x.close(); throw GuiDaemonError("pipe: \(String(cString: strerror(errno)))") }
        for f in wake { _ = fcntl(f, F_SETFD, FD_CLOEXEC); _ = fcntl(f, F_SETFL, O_NONBLOCK) }
        let me = Unmanaged.passRetained(self).toOpaque()
        guard pthread_create(&thread, nil, { raw in
            let d = Unmanaged<GuiDaemon>.fromOpaque(raw!).takeRetainedValue()
            d.loop()
            return nil
        }, me) == 0 else {
            Unmanaged<GuiDaemon>.fromOpaque(me).release()
            Glibc.close(wake[0]); Glibc.close(wake[1]); x.close()
            throw GuiDaemonError("cannot start the gui thread")
        }
        host.log(ODY_LOG_INFO, "gui x11: drawing on a \(x.screenWidth)x\(x.screenHeight) display" + (x.hasFont ? "" : " (no 'fixed' font: titles only in _NET_WM_NAME)"))
    }

    func attach(name: String, color: UInt32, fd: Int32) throws(GuiDaemonError) {
        let refusal = lock.with { () -> String? in
            if stopping { return "the gui instance is closed (or lost its X display)" }
            if attachedNames.contains(name) { return "domain \(name) is already attached" }
            attachedNames.insert(name)
            attaching.append((name, color, fd))
            return nil
        }
        if let refusal { throw GuiDaemonError(refusal) }
        poke()
    }

    func detach(name: String) -> Bool {
        let known = lock.with { () -> Bool in
            guard attachedNames.contains(name) else { return false }
            detaching.append(name)
            return true
        }
        if known { poke() }
        return known
    }

    /// Stops the loop, closes every channel and the display.
    func stop() {
        lock.with { stopping = true }
        poke()
        pthread_join(thread, nil)
        Glibc.close(wake[0]); Glibc.close(wake[1])
        x.close()
    }

    private func poke() { var b: UInt8 = 1; _ = write(wake[1], &b, 1) }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let (add, remove, stop) = lock.with { () -> ([(name: String, color: UInt32, fd: Int32)], [String], Bool) in
                defer { attaching.removeAll(); detaching.removeAll() }
                return (attaching, detaching, stopping)
            }
            if stop { break }
            for a in add { start(a.name, a.color, a.fd) }
            for name in remove { end(name, reason: "detached by the host") }
            handleXEvents()
            XFlush(x.display)
            if x.lost { break }

            let order = Array(sessions.values)
            var fds = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0), pollfd(fd: x.connectionFd, events: Int16(POLLIN), revents: 0)]
            fds += order.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            // XPending above drained Xlib's queue, but drawing and XFlush may
            // read new events into it while they wait to write (an Expose then
            // sat there, unseen by poll, until the next unrelated wake-up): with
            // events queued already, poll only looks and the loop handles them.
            let timeout: Int32 = XQLength(x.display) > 0 ? 0 : -1
            guard poll(&fds, nfds_t(fds.count), timeout) >= 0 || errno == EINTR else { break }
            if fds[0].revents != 0 { var sink = [UInt8](repeating: 0, count: 64); while read(wake[0], &sink, 64) > 0 {} }
            // A hung-up X connection: let Xlib notice (XPending), which sets x.lost.
            if fds[1].revents & Int16(POLLHUP | POLLERR) != 0 { _ = XPending(x.display) }
            for (i, s) in order.enumerated() where fds[i + 2].revents != 0 {
                do throws(GuiDaemonError) {
                    try s.readable(x, &buffer, register: { self.owners[$0.xid] = (s, $0) }, unregister: { self.owners[$0.xid] = nil })
                } catch { end(s.name, reason: error.description) }
            }
        }
        let reason = x.lost ? "the X display was lost" : "the gui instance is closing"
        if x.lost { host.log(ODY_LOG_ERROR, "gui x11: the connection to the X display was lost; every domain's GUI channel is closed") }
        for name in Array(sessions.keys) { end(name, reason: reason) }
        if !x.lost { XFlush(x.display) }
        // Nothing is served any more: refuse new domains, close queued ones.
        let queued = lock.with { () -> [Int32] in
            stopping = true
            defer { attaching.removeAll(); attachedNames.removeAll() }
            return attaching.map(\.fd)
        }
        for fd in queued { Glibc.close(fd) }
    }

    private func start(_ name: String, _ color: UInt32, _ fd: Int32) {
        let s = DomainSession(name: name, color: color, fd: fd, limits: limits)
        sessions[name] = s
        do throws(GuiDaemonError) { try s.send(GuiEncode.hello()) } catch { end(name, reason: error.description) }
        host.log(ODY_LOG_INFO, "gui: \(name) attached")
    }

    /// Ends one domain's session: its windows and channel, nothing else.
    private func end(_ name: String, reason: String) {
        guard let s = sessions.removeValue(forKey: name) else { return }
        s.end(destroyWindows: !x.lost, unregister: { owners[$0.xid] = nil })
        lock.with { _ = attachedNames.remove(name) }
        host.log(ODY_LOG_WARNING, "gui: \(name)'s GUI channel closed: \(reason)")
    }

    private func handleXEvents() {
        var e = XEvent()
        while XPending(x.display) > 0 {
            XNextEvent(x.display, &e)
            guard let (session, window) = owners[e.xany.window] else { continue }
            let w = window.domainWindow
            let i = FrameGeometry.insets(titled: window.titled)
            var out: [UInt8]?
            switch e.type {
            case Expose where e.xexpose.count == 0: window.redraw()
            case KeyPress, KeyRelease:
                out = GuiEncode.key(window: w, pressed: e.type == KeyPress, x: e.xkey.x - i.left, y: e.xkey.y - i.top,
                                    state: e.xkey.state, keycode: e.xkey.keycode)
            case ButtonPress, ButtonRelease:
                out = GuiEncode.button(window: w, pressed: e.type == ButtonPress, x: e.xbutton.x - i.left, y: e.xbutton.y - i.top,
                                       state: e.xbutton.state, button: e.xbutton.button)
            case MotionNotify: out = GuiEncode.motion(window: w, x: e.xmotion.x - i.left, y: e.xmotion.y - i.top, state: e.xmotion.state)
            case FocusIn, FocusOut:
                out = GuiEncode.focus(window: w, focused: e.type == FocusIn)
                if e.type == FocusIn, let fn = host.table.flatMap({ hostHas($0, \.gui_focus) ? $0.pointee.gui_focus : nil }) {
                    session.name.withCString { fn(host.ctx, $0, 0) }
                }
            case ClientMessage where x.isDeleteRequest(e.xclient): out = GuiEncode.close(window: w)
            default: break
            }
            if let out {
                do throws(GuiDaemonError) { try session.send(out) } catch { end(session.name, reason: error.description) }
            }
        }
    }
}

/// True if the host's services table is new enough to have `slot` (1.3 slots on a 1.2 host are absent).
func hostHas<T>(_ table: UnsafePointer<ody_host_services>, _ slot: KeyPath<ody_host_services, T>) -> Bool {
    guard let offset = MemoryLayout<ody_host_services>.offset(of: slot) else { return false }
    return Int(table.pointee.struct_size) >= offset + MemoryLayout<T>.size
}
