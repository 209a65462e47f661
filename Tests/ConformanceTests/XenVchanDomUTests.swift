// vchan-xen across two domains: dom0 serves through the plugin, a real PV
// domU is the client. The domU runs the kit's kernel and busybox initrd
// with one more cpio in front (the kernel unpacks concatenated archives;
// uncompressed first, so libxc loads the file as it is instead of trying to
// gunzip it whole): /vchan-init (rdinit=), the static odyssey-xen-vchan-check
// (linked like the agent: no library needed in the guest) and the
// xen-evtchn and xen-gntdev modules from the kit's dom0 initrd (same kernel). The
// server names the domU by name (xenstore lookup), the client finds dom0's
// ring at /local/domain/0/data/vchan/<its domid>/<port>. One domU boot.
import Foundation
import Host
import XCTest

extension XenVchanConformanceTests {
    func testDomUClientUnderXen() throws {
        let env = ProcessInfo.processInfo.environment
        guard XenConformanceTests.xenRunning else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but Xen is not running"); return }
            throw XCTSkip("Xen is not running; the Xen tier runs this in dom0 with a domU")
        }
        guard let kernel = env["ODYSSEY_XEN_KERNEL"], let ramdisk = env["ODYSSEY_XEN_RAMDISK"] else {
            if XenConformanceTests.inXenTier { XCTFail("ODYSSEY_XEN_TIER is set but not ODYSSEY_XEN_KERNEL/RAMDISK"); return }
            throw XCTSkip("set ODYSSEY_XEN_KERNEL and ODYSSEY_XEN_RAMDISK (scripts/xen-kit's domu/) to run this")
        }
        let kit = env["ODYSSEY_XEN_KIT"] ?? URL(fileURLWithPath: kernel).deletingLastPathComponent().deletingLastPathComponent().path
        let port: UInt32 = 4300
        let fx = try HostFixture(products: ["vmm-xen", "vchan-xen"], configBody: """
        [vmm]
        default = "xen"
        [vmm.xen]
        state_dir = "@DIR@/xen-state"
        [vchan]
        default = "xen"
        """)
        let initrd = try Self.clientInitrd(base: ramdisk, kit: kit, dir: fx.dir + "/domu-initrd", port: port)

        let vmm = try fx.backends.vmm("xen")
        let name = "xvchan\(UInt32.random(in: 0..<100_000))"
        try vmm.define(DomainSpec(name: name, memoryMiB: 112, maxmemMiB: 112, vcpus: 1,
                                  params: [("kernel", kernel), ("ramdisk", initrd), ("type", "pv"), ("cmdline", "console=hvc0 quiet rdinit=/vchan-init")]))
        defer { try? vmm.kill(name); try? vmm.undefine(name) }
        try vmm.start(name)

        // The domU exists now (libxl created it): the server finds its id by name.
        let v = try fx.backends.vchan("xen")
        let server = try v.serverInit(VchanEndpoint(local: "dom0", remote: name, port: port))
        defer { server.close() }
        for _ in 0..<1200 where try server.state() == .waiting { usleep(100_000) }   // at most 120 s for the boot
        XCTAssertEqual(try server.state(), .connected, "the domU's client never connected")
        var sent: [UInt8] = [], echoed: [UInt8] = []
        for step in 0..<100 {
            let chunk = (0..<1000).map { UInt8(truncatingIfNeeded: step &* 13 &+ $0) }
            try server.send(chunk)
            var back = [UInt8](repeating: 0, count: chunk.count)
            try back.withUnsafeMutableBytes { try server.recv($0) }
            sent += chunk; echoed += back
        }
        XCTAssertEqual(echoed, sent, "100 KB echoed intact by the domU")
        server.close()
        try XenConformanceTests.waitForConsole(name, "XEN VCHAN CHECK OK 100000", seconds: 60)
        print("XenVchanDomUTests: dom0 <-> domU \(name) over vchan-xen: 100 KB echoed, the domU saw EOF")
        try peerDeath(v, vmm: vmm, domU: name, ports: (port + 1, port + 2))
    }

    /// The same boot, second part (issue 13): the domU's init then runs two
    /// more clients at once, which echo until they are killed. Dom0 serves
    /// one raw (the plugin's own blocking read) and one bridged (a socket, as
    /// agent links use), measures 1,000 round trips of 64 B on the raw one
    /// (printed: the qrexec bar's raw vchan round trip), blocks a reader in
    /// each, and destroys the domU without either closing: both reads must
    /// end (EOF or an error), not block for ever.
    func peerDeath(_ v: VchanBackend, vmm: VmmBackend, domU name: String, ports: (UInt32, UInt32)) throws {
        let raw = try v.serverInit(VchanEndpoint(local: "dom0", remote: name, port: ports.0))
        defer { raw.close() }
        let bridged = try v.serverInit(VchanEndpoint(local: "dom0", remote: name, port: ports.1), asSocket: true)
        defer { bridged.close() }
        for _ in 0..<600 where try raw.state() == .waiting || bridged.state() == .waiting { usleep(100_000) }
        XCTAssertEqual(try raw.state(), .connected, "the domU's second client never connected")
        XCTAssertEqual(try bridged.state(), .connected, "the domU's third client never connected")

        let ping = [UInt8](repeating: 0x5a, count: 64)
        var pong = [UInt8](repeating: 0, count: 64)
        let t0 = Date()
        for _ in 0..<1000 {
            try raw.send(ping)
            try pong.withUnsafeMutableBytes { try raw.recv($0) }
        }
        let rtt = Date().timeIntervalSince(t0)
        XCTAssertEqual(pong, ping)
        print(String(format: "XenVchanDomUTests: 1,000 round trips of 64 B dom0 <-> domU over vchan-xen: %.0f ms (%.2f ms each)", rtt * 1000, rtt))

        let ended = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var rawResult = "", bridgedResult = ""
        let fd = try bridged.pollFD()
        Thread {
            var b = [UInt8](repeating: 0, count: 64)
            do { rawResult = "read \(try b.withUnsafeMutableBytes { try raw.read($0) }) bytes" } catch { rawResult = "\(error)" }
            ended.signal()
        }.start()
        Thread {
            var b = [UInt8](repeating: 0, count: 64)
            let n = b.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            bridgedResult = "read \(n) bytes"
            ended.signal()
        }.start()
        let k0 = Date()
        try vmm.kill(name)   // libxl destroys it: nothing in the domU closes anything
        XCTAssertEqual(ended.wait(timeout: .now() + 30), .success, "a blocked read outlived its peer domain by 30 s")
        XCTAssertEqual(ended.wait(timeout: .now() + 30), .success, "a blocked read outlived its peer domain by 30 s")
        print(String(format: "XenVchanDomUTests: the domU destroyed under blocked reads: raw %@, bridged %@, both within %.1f s",
                     rawResult, bridgedResult, Date().timeIntervalSince(k0)))
        XCTAssertTrue(rawResult == "read 0 bytes" || rawResult.contains("closed"), "raw: \(rawResult)")
        XCTAssertEqual(bridgedResult, "read 0 bytes", "the bridged socket ends with EOF")
        XCTAssertEqual(try raw.state(), .disconnected)
    }

    /// A newc cpio of /vchan-init, the static client and two modules, then the base initrd.
    static func clientInitrd(base: String, kit: String, dir: String, port: UInt32) throws -> String {
        let fm = FileManager.default
        let extra = dir + "/extra"
        try fm.createDirectory(atPath: extra, withIntermediateDirectories: true)
        // xen-evtchn.ko and xen-gntdev.ko from the dom0 initrd (the same kernel).
        let dom0 = try run("/usr/bin/gzip", ["-dc", kit + "/dom0/initrd.img"])
        _ = try run("/usr/bin/cpio", ["-idm", "--quiet", "--no-absolute-filenames", "*xen-evtchn.ko", "*xen-gntdev.ko"], input: dom0, cwd: extra)
        let modules = try fm.subpathsOfDirectory(atPath: extra).filter { $0.hasSuffix(".ko") }.sorted { $0.contains("evtchn") && !$1.contains("evtchn") }
        XCTAssertEqual(modules.count, 2, "xen-evtchn and xen-gntdev in the kit's dom0 initrd: \(modules)")
        try fm.copyItem(atPath: Build.dir + "/odyssey-xen-vchan-check", toPath: extra + "/odyssey-xen-vchan-check")
        let insmods = modules.map { "/bin/busybox insmod /\($0)" }.joined(separator: "\n")
        let initScript = """
        #!/bin/busybox sh
        /bin/busybox mount -t proc proc /proc
        /bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
        \(insmods)
        echo "XEN VCHAN DOMU UP"
        /odyssey-xen-vchan-check 0 \(port)
        /odyssey-xen-vchan-check 0 \(port + 1) &
        /odyssey-xen-vchan-check 0 \(port + 2) &
        while :; do /bin/busybox sleep 3600; done

        """
        try initScript.write(toFile: extra + "/vchan-init", atomically: true, encoding: .utf8)
        chmod(extra + "/vchan-init", 0o755)
        let names = (try fm.subpathsOfDirectory(atPath: extra)).sorted().joined(separator: "\n") + "\n"
        let archive = try run("/usr/bin/cpio", ["-o", "--quiet", "-H", "newc"], input: Data(names.utf8), cwd: extra)
        var image = archive
        while image.count % 4 != 0 { image.append(0) }   // archives start 4-aligned; the unpacker skips zeros
        image.append(try Data(contentsOf: URL(fileURLWithPath: base)))
        let out = dir + "/initrd.img"
        try image.write(to: URL(fileURLWithPath: out))
        return out
    }

    /// Runs a tool (argv, never a shell) and returns its stdout; fails with its stderr.
    static func run(_ tool: String, _ args: [String], input: Data? = nil, cwd: String? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        if input != nil { p.standardInput = inp }
        try p.run()
        if let input {
            let writer = Thread { inp.fileHandleForWriting.write(input); try? inp.fileHandleForWriting.close() }
            writer.start()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let why = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XenTestError(description: "\(tool) \(args.joined(separator: " ")) failed: \(why)") }
        return data
    }
}
