// The vchan-socket plugin over the raw ABI, for the channel attack tests:
// the host's end of a domain's channel, as odysseyd makes it (server_init
// dom0 -> domain), without the rest of the host.
import Foundation
import PluginABI
import XCTest

final class VchanPlugin: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    let ops: ody_vchan_ops
    private(set) var backend: OpaquePointer?

    init(host: TestHost) throws {
        let plugin = try LoadedPlugin.load("libvchan-socket.so")
        handle = plugin.handle
        ops = plugin.factory.ops!.assumingMemoryBound(to: ody_vchan_ops.self).pointee
        var err = newError()
        var args = ody_instance_args()
        args.struct_size = UInt32(MemoryLayout<ody_instance_args>.size)
        args.host = UnsafePointer(servicesTable)
        args.host_ctx = Unmanaged.passUnretained(host).toOpaque()
        var out: OpaquePointer?
        let rc = "socket".withCString { n -> Int32 in
            args.instance_name = n
            return ops.open(&args, &out, &err)
        }
        guard rc == 0 else { throw NSError(domain: "open", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: text(err)]) }
        backend = out
    }

    deinit { if backend != nil { ops.close_backend(backend, 0) } }

    /// The host's end of the channel dom0 <-> `domain` on `port`.
    func serve(_ domain: String, port: UInt32) throws -> OpaquePointer {
        var ep = ody_vchan_endpoint()
        ep.struct_size = UInt32(MemoryLayout<ody_vchan_endpoint>.size)
        ep.port = port
        ep.local_domid = 0
        ep.remote_domid = -1
        withUnsafeMutableBytes(of: &ep.local_domain) { raw in for (i, b) in "dom0".utf8.enumerated() { raw[i] = b } }
        withUnsafeMutableBytes(of: &ep.remote_domain) { raw in for (i, b) in domain.utf8.enumerated() { raw[i] = b } }
        var err = newError()
        var ch: OpaquePointer?
        guard ops.server_init(backend, &ep, 0, 0, 0, &ch, &err) == 0, let ch else {
            throw NSError(domain: "server_init", code: 1, userInfo: [NSLocalizedDescriptionKey: text(err)])
        }
        return ch
    }

    /// Blocks until a client is connected and has sent something.
    func wait(_ ch: OpaquePointer) throws {
        var err = newError()
        guard ops.wait(ch, 0, &err) == 0 else { throw NSError(domain: "wait", code: 1, userInfo: [NSLocalizedDescriptionKey: text(err)]) }
    }

    func read(_ ch: OpaquePointer) throws -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        var done = 0
        var err = newError()
        let rc = buf.withUnsafeMutableBytes { ops.read(ch, $0.baseAddress, $0.count, &done, 0, &err) }
        guard rc == 0 else { throw NSError(domain: "read", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: text(err)]) }
        return String(decoding: buf[0..<done], as: UTF8.self)
    }

    func send(_ ch: OpaquePointer, _ s: String) throws {
        var err = newError()
        let bytes = Array(s.utf8)
        let rc = bytes.withUnsafeBytes { ops.send(ch, $0.baseAddress, $0.count, 0, &err) }
        guard rc == 0 else { throw NSError(domain: "send", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: text(err)]) }
    }

    func close(_ ch: OpaquePointer) { ops.close(ch, 0) }

    /// On a helper thread, as AgentLink's reader does: waits for the client
    /// the plugin admits, reads what it sent, answers `reply`, and hands
    /// what it read (or the error) to `done`.
    func answerInBackground(_ ch: OpaquePointer, reply: String, done: @escaping @Sendable (String) -> Void) {
        let bits = UInt(bitPattern: ch)
        Thread.detachNewThread { [self] in
            let ch = OpaquePointer(bitPattern: bits)!
            do {
                try wait(ch)
                let got = try read(ch)
                try send(ch, reply)
                done(got)
            } catch { done("error: \(error)") }
        }
    }
}
