// gui-daemon: the `gui` factory "x11". The trusted side of Odyssey's GUI:
// domains' windows on the host's X display, each framed and titled by the
// daemon in its domain's label colour (Plugins/gui-daemon/README.md).
//
// Imports Glibc only (no Foundation) so the plugin maps fast.
import Glibc
import GuiProtocol
import PluginABI
import PluginKit

nonisolated(unsafe) private let guiOps: UnsafeMutablePointer<ody_gui_ops> = {
    let p = UnsafeMutablePointer<ody_gui_ops>.allocate(capacity: 1)
    p.initialize(to: ody_gui_ops(struct_size: UInt32(MemoryLayout<ody_gui_ops>.size), version: ODY_ABI_MINOR,
                                 open: guiOpen, close: guiClose, attach: guiAttach, detach: guiDetach))
    return p
}()

private let entry = PluginEntry(
    id: "gui-daemon", version: "0.1.0", license: "Apache-2.0",
    description: "the trusted GUI on X11: frames and [domain] titles no domain can draw",
    factories: [Factory.describe(kind: ODY_KIND_GUI, name: "x11", capabilities: 0, ops: UnsafeRawPointer(guiOps))])

@_cdecl("odyssey_plugin_entry")
public func odysseyPluginEntry(_ request: UnsafePointer<ody_entry_request>?, _ info: UnsafeMutablePointer<ody_plugin_info>?,
                               _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    entry.answer(request, info, err)
}

/// The instance's limits from its config section; bad values fail open.
private func limits(_ host: HostServices) throws(GuiDaemonError) -> GuiLimits {
    var l = GuiLimits()
    func int(_ key: String) throws(GuiDaemonError) -> Int? {
        guard let v = host.config(key), !v.isEmpty else { return nil }
        guard let n = Int(v) else { throw GuiDaemonError("[gui.x11] \(key) = \"\(v)\": not a number") }
        return n
    }
    if let n = try int("max_windows") { l.maxWindows = n }
    if let n = try int("max_title_bytes") { l.maxTitleBytes = n }
    if let n = try int("max_clipboard_bytes") { l.maxClipboardBytes = n }
    if let n = try int("max_pixel_bytes") { l.maxPixelBytes = n }
    do throws(GuiProtocolError) { return try l.validated() } catch { throw GuiDaemonError("[gui.x11] \(error.detail)") }
}

private func guiOpen(_ args: UnsafePointer<ody_instance_args>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                     _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    guard let args, let out else { return fail(err, ODY_E_INVALID, "open: NULL argument") }
    let host = HostServices(args)
    let display = host.config("display").flatMap { $0.isEmpty ? nil : $0 } ?? getenv("DISPLAY").map { String(cString: $0) } ?? ""
    guard !display.isEmpty else { return fail(err, ODY_E_INVALID, "no X display: set [gui.x11] display or DISPLAY") }
    do throws(GuiDaemonError) {
        let d = try GuiDaemon(displayName: display, limits: try limits(host), host: host)
        out.pointee = Handle.make(d)
        return ODY_OK.rawValue
    } catch { return fail(err, ODY_E_BACKEND, error.description) }
}

private func guiClose(_ gui: OpaquePointer?, _ flags: UInt32) {
    guard let d = Handle.get(gui, as: GuiDaemon.self) else { return }
    d.stop()
    Handle.release(gui, as: GuiDaemon.self)
}

private func guiAttach(_ gui: OpaquePointer?, _ domain: UnsafePointer<ody_gui_domain>?, _ flags: UInt32,
                       _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if ody_check_flags(flags, 0, err) != ODY_OK.rawValue { return ODY_E_FLAGS.rawValue }
    guard let d = Handle.get(gui, as: GuiDaemon.self), let domain else { return fail(err, ODY_E_INVALID, "attach: NULL argument") }
    let need = MemoryLayout<ody_gui_domain>.offset(of: \ody_gui_domain.channel_fd)! + 4
    guard Int(domain.pointee.struct_size) >= need else { return fail(err, ODY_E_ABI, "attach: ody_gui_domain struct_size \(domain.pointee.struct_size) < \(need)") }
    let name = FixedCString.read(domain.pointee.name)
    guard !name.isEmpty, name.utf8.count <= 31, name.utf8.allSatisfy({ isNameByte($0) }) else {
        return fail(err, ODY_E_INVALID, "attach: \"\(name)\" is not a domain name")
    }
    guard domain.pointee.channel_fd >= 0, fcntl(domain.pointee.channel_fd, F_GETFD) >= 0 else {
        return fail(err, ODY_E_INVALID, "attach: \(name): channel_fd is not an open descriptor")
    }
    do throws(GuiDaemonError) {
        try d.attach(name: name, color: domain.pointee.color & 0xffffff, fd: domain.pointee.channel_fd)
        return ODY_OK.rawValue
    } catch { return fail(err, error.description.contains("already attached") ? ODY_E_EXISTS : ODY_E_STATE, error.description) }
}

private func guiDetach(_ gui: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ flags: UInt32,
                       _ err: UnsafeMutablePointer<ody_error>?) -> Int32 {
    if ody_check_flags(flags, 0, err) != ODY_OK.rawValue { return ODY_E_FLAGS.rawValue }
    guard let d = Handle.get(gui, as: GuiDaemon.self), let name else { return fail(err, ODY_E_INVALID, "detach: NULL argument") }
    let n = String(cString: name)
    return d.detach(name: n) ? ODY_OK.rawValue : fail(err, ODY_E_NOT_FOUND, "detach: \(n) is not attached")
}

/// Qubes' name characters: the name becomes part of every title.
private func isNameByte(_ b: UInt8) -> Bool {
    (0x30...0x39).contains(b) || (0x41...0x5a).contains(b) || (0x61...0x7a).contains(b) || b == 0x5f || b == 0x2d || b == 0x2e
}
