// vchan-xen channels as the host's agent links use them (issue 13): a server
// end asked for `asSocket` is bridged (Host's VchanSocketBridge, a pump per
// channel) to a Unix stream socket, because vchan-xen passes no descriptors
// and the host polls, reads and hands (`ody run`, SCM_RIGHTS) sockets. Under
// Xen, dom0 to dom0, with the static client (linked like the agent) as the
// peer: the poll fd wakes when the client connects, then it is a socket that
// carries 100 KB both ways, and closing it is the client's EOF.
import Foundation
import Host
import PluginABI
import XCTest

extension XenVchanConformanceTests {
    func testBridgedChannelIsASocketUnderXen() throws {
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier runs this under Xen")
        }
        let fx = try fixture()
        let v = try fx.backends.vchan("xen")
        XCTAssertTrue(v.peerMustExist, "vchan-xen declares PEER_MUST_EXIST: the host listens after the vmm's start")
        let ch = try v.serverInit(VchanEndpoint(local: "dom0", remote: "work", port: 4110, localDomid: 0, remoteDomid: 0), asSocket: true)
        defer { ch.close() }
        XCTAssertTrue(ch.isSocket)
        XCTAssertEqual(try ch.state(), .waiting)

        let check = Process()
        check.executableURL = URL(fileURLWithPath: Build.dir + "/odyssey-xen-vchan-check")
        check.arguments = ["0", "4110"]
        let out = Pipe()
        check.standardOutput = out
        try check.run()
        // The connection wakes a poller of the channel's fd (no timeout involved).
        var p = pollfd(fd: try ch.pollFD(), events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&p, 1, 60_000), 1, "the poll fd did not wake when the client connected")
        XCTAssertEqual(try ch.state(), .connected)
        let fd = try ch.pollFD()
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFSOCK, "a connected bridged channel's fd is a stream socket")

        // Through the socket itself, as `ody run` would use the descriptor.
        var sent: [UInt8] = [], echoed: [UInt8] = []
        for step in 0..<100 {
            let chunk = (0..<1000).map { UInt8(truncatingIfNeeded: step &* 11 &+ $0) }
            XCTAssertEqual(chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, chunk.count)
            var back = [UInt8](repeating: 0, count: chunk.count)
            var got = 0
            while got < back.count {
                let n = back.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
                guard n > 0 else { XCTFail("the bridged socket ended after \(got) bytes of step \(step)"); return }
                got += n
            }
            sent += chunk; echoed += back
        }
        XCTAssertEqual(echoed, sent, "100 KB echoed intact through the bridge")
        ch.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("XEN VCHAN CHECK OK 100000"), "closing the bridged channel is the client's EOF: \(text)")
    }
}
