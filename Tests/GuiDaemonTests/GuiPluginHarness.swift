// The gui-daemon loaded as odysseyd loads a plugin (dlopen, entry, the gui
// factory's ops), with a host-services table of the test's own, and domains
// played by socketpairs speaking Sources/GuiProtocol. The in-domain agent
// (an X server with XComposite) is the next slice; this is its stand-in.
import Foundation
import GuiProtocol
import PluginABI
import XCTest

final class GuiTestHost: @unchecked Sendable {
    let config: [String: String]
    private let lock = NSLock()
    private var logLines: [String] = []
    init(config: [String: String]) { self.config = config }
    func record(_ line: String) { lock.lock(); logLines.append(line); lock.unlock() }
    var logs: [String] { lock.lock(); defer { lock.unlock() }; return logLines }
}

private func guiHost(_ ctx: UnsafeMutableRawPointer?) -> GuiTestHost { Unmanaged<GuiTestHost>.fromOpaque(ctx!).takeUnretainedValue() }

nonisolated(unsafe) let guiServices: UnsafeMutablePointer<ody_host_services> = {
    var t = ody_host_services()
    t.struct_size = UInt32(MemoryLayout<ody_host_services>.size)
    t.version = ODY_ABI_MINOR
    t.log = { ctx, level, msg in guiHost(ctx).record("[\(level)] " + String(cString: msg!)) }
    t.config_get = { ctx, key, buf, size, needed, _ in
        guard let key, let v = guiHost(ctx).config[String(cString: key)] else { return ODY_E_NOT_FOUND.rawValue }
        let bytes = Array(v.utf8) + [0]
        needed?.pointee = bytes.count
        guard let buf, bytes.count <= size else { return ODY_E_TOO_SMALL.rawValue }
        bytes.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return ODY_OK.rawValue
    }
    let p = UnsafeMutablePointer<ody_host_services>.allocate(capacity: 1)
    p.initialize(to: t)
    return p
}()

struct GuiFailure: Error, CustomStringConvertible { let description: String }

/// One open gui instance of the plugin.
final class GuiPlugin {
    let host: GuiTestHost
    let ops: ody_gui_ops
    private(set) var instance: OpaquePointer?

    static var library: String {
        let dir = ProcessInfo.processInfo.environment["ODYSSEY_BUILD_DIR"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/.build/debug"
        return dir + "/libgui-daemon.so"
    }

    init(config: [String: String]) throws {
        guard FileManager.default.fileExists(atPath: Self.library) else {
            throw GuiFailure(description: "\(Self.library) is not built: run `swift build` (all products) first, or set ODYSSEY_BUILD_DIR")
        }
        guard let h = dlopen(Self.library, RTLD_NOW | RTLD_LOCAL), let sym = dlsym(h, ODY_ENTRY_SYMBOL) else {
            throw GuiFailure(description: "dlopen: \(String(cString: dlerror()))")
        }
        let entry = unsafeBitCast(sym, to: ody_entry_fn.self)
        var req = ody_entry_request()
        req.struct_size = UInt32(MemoryLayout<ody_entry_request>.size)
        req.abi_major = ODY_ABI_MAJOR
        req.abi_minor = ODY_ABI_MINOR
        var info = ody_plugin_info()
        info.struct_size = UInt32(MemoryLayout<ody_plugin_info>.size)
        var err = Self.newError()
        guard entry(&req, &info, &err) == 0 else { throw GuiFailure(description: Self.text(err)) }
        XCTAssertEqual(info.abi_minor, 3)
        let f = info.factories![0]!.pointee
        XCTAssertEqual(f.kind, ODY_KIND_GUI.rawValue)
        XCTAssertEqual(String(cString: f.name), "x11")
        ops = f.ops!.assumingMemoryBound(to: ody_gui_ops.self).pointee
        host = GuiTestHost(config: config)
        var args = ody_instance_args()
        args.struct_size = UInt32(MemoryLayout<ody_instance_args>.size)
        args.host = UnsafePointer(guiServices)
        args.host_ctx = Unmanaged.passRetained(host).toOpaque()
        let rc = "x11".withCString { name in
            args.instance_name = name
            return ops.open!(&args, &instance, &err)
        }
        guard rc == 0 else { throw GuiFailure(description: Self.text(err)) }
    }

    func close() { if let instance { ops.close!(instance, 0) }; instance = nil }

    /// Attaches a domain and returns the domain's end of its channel.
    func attach(_ name: String, label: String, color: UInt32) throws -> FakeDomain {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw GuiFailure(description: "socketpair") }
        var d = ody_gui_domain()
        d.struct_size = UInt32(MemoryLayout<ody_gui_domain>.size)
        withUnsafeMutableBytes(of: &d.name) { raw in for (i, b) in name.utf8.enumerated() { raw[i] = b } }
        withUnsafeMutableBytes(of: &d.label) { raw in for (i, b) in label.utf8.enumerated() { raw[i] = b } }
        d.color = color
        d.channel_fd = pair[0]
        var err = Self.newError()
        guard ops.attach!(instance, &d, 0, &err) == 0 else {
            closeDescriptor(pair[0]); closeDescriptor(pair[1])
            throw GuiFailure(description: Self.text(err))
        }
        return FakeDomain(fd: pair[1])
    }

    func attachError(_ name: String, fd: Int32) -> (Int32, String) {
        var d = ody_gui_domain()
        d.struct_size = UInt32(MemoryLayout<ody_gui_domain>.size)
        withUnsafeMutableBytes(of: &d.name) { raw in for (i, b) in name.utf8.prefix(63).enumerated() { raw[i] = b } }
        d.channel_fd = fd
        var err = Self.newError()
        let rc = ops.attach!(instance, &d, 0, &err)
        return (rc, Self.text(err))
    }

    static func newError() -> ody_error {
        var e = ody_error()
        e.struct_size = UInt32(MemoryLayout<ody_error>.size)
        return e
    }

    static func text(_ e: ody_error) -> String {
        withUnsafeBytes(of: e.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

func closeDescriptor(_ fd: Int32) { _ = Glibc.close(fd) }

/// A domain's end of its GUI channel: writes protocol bytes, reads the daemon's.
final class FakeDomain: @unchecked Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { closeDescriptor(fd) }

    /// Writes all of `bytes`; false once the daemon closed the channel.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// The hello exchange: the daemon's hello, ours, then the screen size.
    func handshake() throws -> (width: UInt32, height: UInt32) {
        let hello = try readMessage()
        guard hello.type == GuiMessageType.hello.rawValue else { throw GuiFailure(description: "expected hello, got \(hello.type)") }
        send(GuiEncode.hello())
        let screen = try readMessage()
        guard screen.type == GuiMessageType.screen.rawValue, screen.body.count == 8 else { throw GuiFailure(description: "expected screen") }
        var r = LittleEndianReader(screen.body[...])
        return (r.u32(), r.u32())
    }

    func readMessage(timeout: Int32 = 20_000) throws -> (type: UInt32, window: UInt32, body: [UInt8]) {
        let head = try readExactly(GuiHeader.size, timeout: timeout)
        let h = GuiHeader(head[...])
        return (h.rawType, h.window, try readExactly(Int(h.untrustedLength), timeout: timeout))
    }

    /// True once the daemon closed its end (EOF), skipping what it sent before.
    func waitForClose(timeout: Int32 = 20_000) -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, timeout) == 1 else { return false }
            let n = read(fd, &buf, buf.count)
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            if n < 0 && errno != EINTR { return false }
        }
    }

    private func readExactly(_ count: Int, timeout: Int32) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count), got = 0
        while got < count {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, timeout) == 1 else { throw GuiFailure(description: "no message from the daemon within \(timeout) ms") }
            let n = out[got...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw GuiFailure(description: "the daemon closed the channel") }
            got += n
        }
        return out
    }
}
