// A small host over the raw ABI for testing vmm-native: dlopen the .so, call
// the entry, open the `native` factory, and collect logs and events. (The
// real host loader lives in Sources/Host; this harness stays independent.)
import Foundation
import PluginABI
import XCTest

/// Host services: config from a dictionary, logs and events recorded.
final class TestHost: @unchecked Sendable {
    let config: [String: String]
    private let cond = NSCondition()
    private(set) var events: [(domain: String, state: UInt32, message: String)] = []
    private(set) var logs: [String] = []
    let verbose = ProcessInfo.processInfo.environment["ODY_TEST_VERBOSE"] != nil

    init(config: [String: String]) { self.config = config }

    func record(event e: ody_event) {
        let domain = withUnsafeBytes(of: e.domain) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let message = withUnsafeBytes(of: e.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if verbose { print("event \(domain) state=\(e.state) \(message)") }
        cond.lock()
        events.append((domain, e.state, message))
        cond.broadcast()
        cond.unlock()
    }

    func record(log: String) {
        if verbose { print("log: \(log)") }
        cond.lock(); logs.append(log); cond.unlock()
    }

    /// Waits for the `occurrence`-th lifecycle event of `domain` with `state`.
    func waitFor(_ domain: String, _ state: ody_power_state, occurrence: Int = 1, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock()
        defer { cond.unlock() }
        while events.filter({ $0.domain == domain && $0.state == state.rawValue }).count < occurrence {
            if !cond.wait(until: deadline) { return false }
        }
        return true
    }

    /// Waits until `predicate` holds over the events so far (checked at each event).
    func waitUntil(timeout: TimeInterval = 20, _ predicate: ([(domain: String, state: UInt32, message: String)]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock()
        defer { cond.unlock() }
        while !predicate(events) {
            if !cond.wait(until: deadline) { return predicate(events) }
        }
        return true
    }

    func states(of domain: String) -> [UInt32] {
        cond.lock(); defer { cond.unlock() }
        return events.filter { $0.domain == domain }.map(\.state)
    }

    func lastMessage(of domain: String) -> String {
        cond.lock(); defer { cond.unlock() }
        return events.last { $0.domain == domain }?.message ?? ""
    }
}

private func hostOf(_ ctx: UnsafeMutableRawPointer?) -> TestHost {
    Unmanaged<TestHost>.fromOpaque(ctx!).takeUnretainedValue()
}

nonisolated(unsafe) let servicesTable: UnsafeMutablePointer<ody_host_services> = {
    var t = ody_host_services()
    t.struct_size = UInt32(MemoryLayout<ody_host_services>.size)
    t.version = 0
    t.log = { ctx, level, msg in hostOf(ctx).record(log: "[\(level)] " + String(cString: msg!)) }
    t.emit_event = { ctx, ev in hostOf(ctx).record(event: ev!.pointee) }
    t.config_get = { ctx, key, buf, size, needed, _ in
        guard let key, let v = hostOf(ctx).config[String(cString: key)] else { return ODY_E_NOT_FOUND.rawValue }
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

func newError() -> ody_error {
    var e = ody_error()
    e.struct_size = UInt32(MemoryLayout<ody_error>.size)
    return e
}

func text(_ e: ody_error) -> String {
    withUnsafeBytes(of: e.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// The loaded plugin: entry answered, the vmm factory found.
struct LoadedPlugin {
    let handle: UnsafeMutableRawPointer
    let entry: ody_entry_fn
    let info: ody_plugin_info
    let factory: ody_factory
    var ops: ody_vmm_ops { factory.ops!.assumingMemoryBound(to: ody_vmm_ops.self).pointee }

    /// Directory of the build products (the test bundle sits beside them).
    static var buildDirectory: String {
        if let d = ProcessInfo.processInfo.environment["ODY_NATIVE_BUILD_DIR"] { return d }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Bundle layout: <build>/X.xctest (an executable on Linux).
        if url.pathExtension == "xctest" { url = url.deletingLastPathComponent() }
        return url.path
    }

    /// dlopens `library` from the build directory and does the entry
    /// handshake as odysseyd does (its first factory).
    static func load(_ library: String = "libvmm-native.so") throws -> LoadedPlugin {
        let path = buildDirectory + "/" + library
        guard FileManager.default.fileExists(atPath: path) else {
            // A loud failure, not a skip: CI must not pass without the plugin.
            throw NSError(domain: "NativeTests", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "\(path) is not built: run `swift build` (all products) before `swift test`, or set ODY_NATIVE_BUILD_DIR"])
        }
        guard let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw NSError(domain: "dlopen", code: 1, userInfo: [NSLocalizedDescriptionKey: String(cString: dlerror())])
        }
        guard let sym = dlsym(h, ODY_ENTRY_SYMBOL) else { throw NSError(domain: "dlsym", code: 1) }
        let entry = unsafeBitCast(sym, to: ody_entry_fn.self)
        var req = ody_entry_request()
        req.struct_size = UInt32(MemoryLayout<ody_entry_request>.size)
        req.abi_major = ODY_ABI_MAJOR
        req.abi_minor = ODY_ABI_MINOR
        var info = ody_plugin_info()
        info.struct_size = UInt32(MemoryLayout<ody_plugin_info>.size)
        var err = newError()
        let rc = entry(&req, &info, &err)
        guard rc == 0 else { throw NSError(domain: "entry", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: text(err)]) }
        let f = info.factories![0]!.pointee
        return LoadedPlugin(handle: h, entry: entry, info: info, factory: f)
    }
}

/// One open instance of the native vmm with convenience calls that throw
/// the plugin's message. The plugin is thread-safe, so this wrapper is too
/// (as long as close is not racing other calls).
final class VMM: @unchecked Sendable {
    let plugin: LoadedPlugin
    let host: TestHost
    private(set) var raw: OpaquePointer?

    struct Failure: Error, CustomStringConvertible {
        let code: Int32
        let message: String
        var description: String { "\(code): \(message)" }
    }

    init(plugin: LoadedPlugin, host: TestHost) throws {
        self.plugin = plugin
        self.host = host
        var args = ody_instance_args()
        args.struct_size = UInt32(MemoryLayout<ody_instance_args>.size)
        args.host = UnsafePointer(servicesTable)
        args.host_ctx = Unmanaged.passUnretained(host).toOpaque()
        var err = newError()
        var out: OpaquePointer?
        let rc = "native".withCString { n -> Int32 in
            args.instance_name = n
            return plugin.ops.open(&args, &out, &err)
        }
        guard rc == 0 else { throw Failure(code: rc, message: text(err)) }
        raw = out
    }

    func close() {
        if raw != nil { plugin.ops.close(raw, 0); raw = nil }
    }

    deinit { close() }

    @discardableResult
    func check(_ body: (UnsafeMutablePointer<ody_error>) -> Int32) throws -> Int32 {
        var err = newError()
        let rc = body(&err)
        guard rc >= 0 else { throw Failure(code: rc, message: text(err)) }
        return rc
    }

    func define(_ name: String, memory: UInt64 = 0, maxmem: UInt64 = 0, vcpus: UInt32 = 1, params: [String: String]) throws {
        var c = ody_domain_config()
        c.struct_size = UInt32(MemoryLayout<ody_domain_config>.size)
        withUnsafeMutableBytes(of: &c.name) { raw in for (i, b) in name.utf8.enumerated() { raw[i] = b } }
        c.memory_mib = memory
        c.maxmem_mib = maxmem
        c.vcpus = vcpus
        var blob: [CChar] = []
        for (k, v) in params { blob += "\(k)=\(v)".utf8CString }
        c.params_len = UInt32(blob.count)
        try blob.withUnsafeBufferPointer { buf in
            c.params = buf.baseAddress
            try check { plugin.ops.define(raw, &c, 0, $0) }
        }
    }

    func start(_ n: String) throws { try check { plugin.ops.start(raw, n, 0, $0) } }
    func shutdown(_ n: String, wait: Bool = true) throws {
        try check { plugin.ops.shutdown(raw, n, wait ? UInt32(ODY_VMM_SHUTDOWN_WAIT) : 0, $0) }
    }
    func kill(_ n: String) throws { try check { plugin.ops.kill(raw, n, 0, $0) } }
    func pause(_ n: String) throws { try check { plugin.ops.pause(raw, n, 0, $0) } }
    func unpause(_ n: String) throws { try check { plugin.ops.unpause(raw, n, 0, $0) } }
    func undefine(_ n: String) throws { try check { plugin.ops.undefine(raw, n, 0, $0) } }

    func info(_ n: String) throws -> ody_domain_info {
        var i = ody_domain_info()
        i.struct_size = UInt32(MemoryLayout<ody_domain_info>.size)
        try check { plugin.ops.get_info(raw, n, &i, 0, $0) }
        return i
    }

    func list() throws -> [String] {
        var needed = 0
        var err = newError()
        _ = plugin.ops.list(raw, nil, 0, &needed, 0, &err)
        var buf = [CChar](repeating: 0, count: max(needed, 1))
        try check { plugin.ops.list(raw, &buf, buf.count, &needed, 0, $0) }
        return buf.prefix(needed).split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }
}
