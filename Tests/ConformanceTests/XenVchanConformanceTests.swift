// vchan-xen. On a host without Xen (this CI's host side), opening must be
// refused as unsupported, naming what is missing, and the host's Backends
// keeps working with another channel. Under Xen (scripts/xen-tests runs this
// suite in dom0) the generic vchan conformance body runs with dom0 as both
// ends: the server grants its ring to domain 0 and the client, opened with
// the same backend's client_init, maps it (Xen allows a domain to grant to
// itself; the Xen tier measured it), so every check runs over real grant
// tables, event channels and xenstore.
import Foundation
import Host
import PluginABI
import XCTest

/// The domain's side under Xen: dom0 itself, by id, through client_init.
final class XenLoopbackClientSide: VchanClientSide {
    let backend: VchanBackend
    init(backend: VchanBackend) { self.backend = backend }
    func serverEndpoint(domain: String, port: UInt32) -> VchanEndpoint {
        VchanEndpoint(local: "dom0", remote: domain, port: port, localDomid: 0, remoteDomid: 0)
    }
    func dial(domain: String, port: UInt32) throws -> VchanPeer {
        ChannelPeer(try backend.clientInit(VchanEndpoint(local: domain, remote: "dom0", port: port, localDomid: 0, remoteDomid: 0)))
    }
}

final class XenVchanConformanceTests: XCTestCase {
    func fixture(extra: String = "") throws -> HostFixture {
        let fx = try HostFixture(products: ["vchan-xen", "vchan-socket"], configBody: """
        [vchan]
        default = "xen"
        [vchan.socket]
        socket_dir = "@DIR@/ch"
        \(extra)
        """)
        XCTAssertEqual(fx.backends.registry.refused, [], "a plugin was refused")
        return fx
    }

    func testPluginLoadsAndDeclaresItsFactory() throws {
        let fx = try fixture()
        let f = try XCTUnwrap(fx.backends.registry.factory(.vchan, "xen"))
        XCTAssertEqual(f.pluginID, "vchan-xen")
        XCTAssertEqual(f.capabilities, ODY_VCHAN_CAP_CROSS_KERNEL | ODY_VCHAN_CAP_PEER_MUST_EXIST,
                       "cross-kernel, the peer must exist before server_init, no fd passing")
    }

    func testNoXenIsRefusedCleanlyAndHostKeepsRunning() throws {
        if XenConformanceTests.xenRunning { throw XCTSkip("Xen is running here; the no-Xen refusal cannot be tested") }
        let fx = try fixture()
        for attempt in 1...2 {  // not cached: every use retries, and fails the same way
            if let e = expectError(.unsupported, "attempt \(attempt): open without Xen", { _ = try fx.backends.vchan("xen") }) {
                XCTAssertTrue(e.message.contains("Xen is not running here: /dev/xen/evtchn"), e.message)
                XCTAssertTrue(e.message.contains("socket, virtio-serial or vsock"), "the refusal says what to use: \(e.message)")
            }
        }
        // Refused before the library is loaded: nothing of Xen is mapped.
        XCTAssertFalse(LazyLoadChild.mapped("/libxenvchan.so"), "libxenvchan mapped by loading vchan-xen or by its refusal")
        // The host and another channel go on working.
        let socket = try fx.backends.vchan("socket")
        let ch = try socket.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 512))
        XCTAssertEqual(try ch.state(), .waiting)
        ch.close()
    }

    func testBadConnectTimeoutIsRefused() throws {
        let fx = try fixture(extra: "[vchan.xen]\nconnect_timeout_ms = \"0\"")
        if let e = expectError(.invalid, "connect_timeout_ms 0", { _ = try fx.backends.vchan("xen") }) {
            XCTAssertTrue(e.message.contains("connect_timeout_ms"), e.message)
        }
    }

    /// The agent is a static executable: it links libxenvchan and its
    /// closure from libxen-dev's .a files (XenVchanLinked), so a domU's
    /// agent needs no Xen library in its initrd.
    func testAgentLinksLibxenvchanStatically() throws {
        // The same binary as on the host, where this ran; nm over dom0's 9p root costs ~12 s under TCG.
        if XenConformanceTests.inXenTier { throw XCTSkip("checked on the host (the same agent binary); testStaticClientUnderXen runs the static path here") }
        let agent = Build.dir + "/odyssey-agent"
        guard FileManager.default.fileExists(atPath: agent) else { XCTFail("\(agent) is not built"); return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
        p.arguments = [agent]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let symbols = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        for sym in ["libxenvchan_client_init", "xengnttab_open", "xenevtchn_open", "xs_open"] {
            XCTAssertTrue(symbols.contains(" T \(sym)\n"), "\(sym) is not linked into the agent")
        }
    }

    /// Under Xen: the static client (linked like the agent) echoes through a
    /// channel the plugin serves; 100 KB in 1000-byte steps, then EOF.
    func testStaticClientUnderXen() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier runs this under Xen")
        }
        let fx = try fixture()
        let v = try fx.backends.vchan("xen")
        let server = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4100, localDomid: 0, remoteDomid: 0))
        defer { server.close() }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: Build.dir + "/odyssey-xen-vchan-check")
        check.arguments = ["0", "4100"]
        let out = Pipe()
        check.standardOutput = out
        try check.run()
        var sent: [UInt8] = [], echoed: [UInt8] = []
        for step in 0..<100 {
            let chunk = (0..<1000).map { UInt8(truncatingIfNeeded: step &* 7 &+ $0) }
            try server.send(chunk)
            var back = [UInt8](repeating: 0, count: chunk.count)
            try back.withUnsafeMutableBytes { try server.recv($0) }
            sent += chunk; echoed += back
        }
        XCTAssertEqual(echoed, sent, "the static client echoed 100 KB intact")
        server.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("XEN VCHAN CHECK OK 100000"), "the client saw our close as EOF after 100000 bytes: \(text)")
    }

    /// Under Xen: a peer that lies in the shared page (odyssey-xen-vchan-check
    /// hostile). A producer index 2^30 ahead is not believed (data_ready
    /// stays within the ring); a live flag of 7 reads as DISCONNECTED, reads
    /// as EOF, writes fail CLOSED; the backend goes on serving.
    func testHostilePeerUnderXen() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier runs this under Xen")
        }
        let fx = try fixture()
        let v = try fx.backends.vchan("xen")
        let server = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4200, localDomid: 0, remoteDomid: 0),
                                      readMin: 1024, writeMin: 1024)
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: Build.dir + "/odyssey-xen-vchan-check")
        peer.arguments = ["hostile", "0", "4200"]
        let out = Pipe()
        peer.standardOutput = out
        try peer.run()
        var good = [UInt8](repeating: 0, count: 4)
        try good.withUnsafeMutableBytes { try server.recv($0) }
        XCTAssertEqual(good, Array("good".utf8))
        try server.send(Array("g".utf8))
        // The peer now claims 2^30 bytes in a 1-2 KiB ring.
        var ready = 0
        for _ in 0..<50 { ready = try server.dataReady(); usleep(10_000) }
        XCTAssertLessThanOrEqual(ready, 2048, "data_ready is bounded by the ring, whatever the peer's index says")
        try server.send(Array("2".utf8))
        // The peer writes 7 into its live flag: not a state, so DISCONNECTED.
        try VchanMuxConformanceTests.waitState(server, .disconnected)
        var one = [UInt8](repeating: 0, count: 1)
        XCTAssertEqual(try one.withUnsafeMutableBytes { try server.read($0) }, 0, "a peer with a bogus live flag reads as EOF")
        expectError(.io, "write to a peer that is not live (ODY_E_CLOSED)") { try server.send(Array("x".utf8)) }
        server.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        peer.waitUntilExit()
        XCTAssertEqual(peer.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("XEN VCHAN HOSTILE DONE srv_live=0"), text)
        // The backend goes on: a fresh channel on the same port works.
        let again = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4200, localDomid: 0, remoteDomid: 0))
        defer { again.close() }
        let client = try v.clientInit(VchanEndpoint(local: "work", remote: "dom0", port: 4200, localDomid: 0, remoteDomid: 0))
        defer { client.close() }
        try client.send(Array("ok".utf8))
        var ok = [UInt8](repeating: 0, count: 2)
        try ok.withUnsafeMutableBytes { try again.recv($0) }
        XCTAssertEqual(ok, Array("ok".utf8))
    }

    /// Under Xen: the generic vchan body, dom0 to dom0.
    func testConformanceUnderXen() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running (no /dev/xen/privcmd)"); return }
            throw XCTSkip("Xen is not running; the Xen tier (make test-xen, IntegrationTests.XenTierTests) runs this under Xen")
        }
        let fx = try fixture(extra: "[vchan.xen]\nconnect_timeout_ms = \"30000\"")
        let v = try fx.backends.vchan("xen")
        XCTAssertFalse(v.canPassFDs)
        let t0 = Date()
        try VchanMuxConformanceTests.conformance("xen", v, XenLoopbackClientSide(backend: v))
        print("check vchan conformance passed under Xen (\(String(format: "%.1f", Date().timeIntervalSince(t0))) s)")
    }

    /// Under Xen: what only Xen has. A client that names a port nobody
    /// serves times out with the path; a second server on a published path
    /// is refused; a large message crosses a small ring (recv/send loop);
    /// the xenstore entries disappear once the client is in (the path can be served again).
    func testXenSpecificsUnderXen() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier runs this under Xen")
        }
        let fx = try fixture(extra: "[vchan.xen]\nconnect_timeout_ms = \"300\"")
        let v = try fx.backends.vchan("xen")
        if let e = expectError(.timeout, "client_init with no server", {
            _ = try v.clientInit(VchanEndpoint(local: "work", remote: "dom0", port: 4000, localDomid: 0, remoteDomid: 0))
        }) { XCTAssertTrue(e.message.contains("/local/domain/0/data/vchan/0/4000"), e.message) }
        expectError(.notFound, "a domain name xenstore does not know") {
            _ = try v.serverInit(VchanEndpoint(local: "dom0", remote: "no-such-domain", port: 512))
        }

        let server = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4001, localDomid: 0, remoteDomid: 0),
                                      readMin: 1024, writeMin: 1024)
        defer { server.close() }
        expectError(.exists, "a second server on a published path") {
            _ = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4001, localDomid: 0, remoteDomid: 0))
        }
        let client = try v.clientInit(VchanEndpoint(local: "work", remote: "dom0", port: 4001, localDomid: 0, remoteDomid: 0))
        defer { client.close() }
        try VchanMuxConformanceTests.waitState(server, .connected)
        // Connected: the entries are gone, so the path can be served again (and nobody else finds the ring).
        let again = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4001, localDomid: 0, remoteDomid: 0))
        again.close()

        // 256 KiB through 1-2 KiB rings: the sender blocks on a full ring and is woken by the reader.
        let big = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let sent = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var sendError: Error?
        let sender = Thread { do { try client.send(big) } catch { sendError = error }; sent.signal() }
        sender.start()
        var got = [UInt8](repeating: 0, count: big.count)
        try got.withUnsafeMutableBytes { try server.recv($0) }
        sent.wait()
        XCTAssertNil(sendError)
        XCTAssertEqual(got, big, "256 KiB intact through a small ring")
    }
}
