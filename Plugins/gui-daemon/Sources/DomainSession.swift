// One attached domain: its GUI channel, the validator that stands between
// its bytes and everything else, and its host windows. Any protocol error
// ends this session alone: its windows go, its channel closes.
import CX11
import Glibc
import GuiProtocol
import PluginKit

final class DomainSession {
    let name: String
    let color: UInt32
    let fd: Int32
    private var reader = GuiStreamReader()
    private var validator: GuiValidator
    private(set) var windows: [UInt32: HostWindow] = [:]

    init(name: String, color: UInt32, fd: Int32, limits: GuiLimits) {
        self.name = name
        self.color = color
        self.fd = fd
        validator = GuiValidator(limits: limits)
    }

    /// Sends a message; a domain that stops reading its channel (a full
    /// socket buffer) is closed rather than letting the daemon block.
    func send(_ bytes: [UInt8]) throws(GuiDaemonError) {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw GuiDaemonError("\(name) does not read its GUI channel (send: \(n < 0 ? String(cString: strerror(errno)) : "partial"))") }
    }

    /// Reads what the channel holds and acts on every whole message.
    /// Throws when the session must end (EOF, I/O or protocol error).
    func readable(_ x: XContext, _ buffer: inout [UInt8], register: (HostWindow) -> Void, unregister: (HostWindow) -> Void) throws(GuiDaemonError) {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0, errno == EINTR || errno == EAGAIN { return }
        guard n > 0 else { throw GuiDaemonError(n == 0 ? "\(name) closed its GUI channel" : "\(name): read: \(String(cString: strerror(errno)))") }
        reader.feed(buffer[0..<n])
        while true {
            let message: DomainMessage?
            do throws(GuiProtocolError) { message = try reader.next(&validator) } catch { throw GuiDaemonError("\(name): \(error)") }
            guard let message else { return }
            try handle(message, x, register: register, unregister: unregister)
        }
    }

    private func handle(_ m: DomainMessage, _ x: XContext, register: (HostWindow) -> Void, unregister: (HostWindow) -> Void) throws(GuiDaemonError) {
        switch m {
        case .hello:
            try send(GuiEncode.screen(width: x.screenWidth, height: x.screenHeight))
        case .create(let w, let rect, _, let overrideRedirect):
            let hw = HostWindow(x: x, domain: name, color: color, domainWindow: w, rect: rect, overrideRedirect: overrideRedirect)
            windows[w] = hw
            register(hw)
            try acknowledgeIfMoved(hw, asked: rect)
        case .destroy(let w):
            if let hw = windows.removeValue(forKey: w) { unregister(hw); hw.destroy() }
            try send(GuiEncode.destroyAck(window: w))
        case .map(let w, _, _): windows[w]?.map()
        case .unmap(let w): windows[w]?.unmap()
        case .configure(let w, let rect, _):
            guard let hw = windows[w] else { return }
            hw.configure(rect)
            try acknowledgeIfMoved(hw, asked: rect)
        case .title(let w, let text): windows[w]?.setTitle(text)
        case .windowClass(let w, let c, let n): windows[w]?.setClass(c, n)
        case .hints: break   // advice for a window manager; the frame needs none yet
        case .damage(let w, let rect, let pixels): windows[w]?.damage(rect, pixels)
        case .damageOutside: break
        // Clipboard data moves only after the user's copy chord, which the
        // next slice adds; until then unrequested data is dropped, as Qubes does.
        case .clipboardData, .clipboardTooLarge: break
        }
    }

    /// Tells the domain where its window really is when the daemon moved it
    /// (forced on screen), so the agent's coordinates follow.
    private func acknowledgeIfMoved(_ hw: HostWindow, asked: GuiRect) throws(GuiDaemonError) {
        let placed = hw.placed
        if placed != asked { try send(GuiEncode.configureAck(window: hw.domainWindow, placed)) }
    }

    /// Destroys every window (unless the display is gone) and closes the channel.
    func end(destroyWindows: Bool, unregister: (HostWindow) -> Void) {
        for hw in windows.values { unregister(hw); if destroyWindows { hw.destroy() } }
        windows.removeAll()
        Glibc.close(fd)
    }
}
