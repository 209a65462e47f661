// The guest kit for real: scripts/guest-kit's kernel and initrd booted by
// qemu-system-x86_64 (TCG, q35) with the boot contract's disks (found by
// serial), a read-only 9p share holding a tiny "agent", and a virtio-serial
// port wired to a host Unix socket. The agent (a busybox script, PID 1 after
// the init's switch_root) reports what the init built; the test reads it
// from the socket. A second boot proves a bad command line powers off with
// `odyssey-init: ERROR` instead of leaving a shell.
import Foundation
import XCTest

final class GuestKitTests: XCTestCase {
    /// Where the kit lives: the default pool, shared with `make demo`/`make test`,
    /// unless ODYSSEY_GUEST_KIT_POOL names another (a kit under test, built apart).
    static let pool = ProcessInfo.processInfo.environment["ODYSSEY_GUEST_KIT_POOL"] ?? "/var/lib/odyssey/vm-kernels"
    static let kitArguments = ["--prefix", pool]
    static let portName = "org.odyssey.vchan.0"

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("the guest kit writes \(Self.pool); run the tests as root") }
        guard Self.qemu != nil else {
            throw XCTSkip("qemu-system-x86_64 is not installed (scripts/install-deps installs qemu-system-x86): the VM tier cannot run")
        }
    }

    static let qemu: String? = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    func testKitBootsTheAgentWithTheQubesLayout() throws {
        let entry = try Self.buildKit()
        let dir = try Self.scratch("kit-boot")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // Root: the tests' busybox rootfs as an ext4 image, never mounted on the host.
        let rootfs = try Build.busyboxRootfs(at: dir + "/rootfs")
        try Self.tool("/sbin/mke2fs", ["-q", "-t", "ext4", "-d", rootfs, dir + "/root.img", "64M"])
        try Self.tool("/sbin/mke2fs", ["-q", "-t", "ext4", dir + "/private.img", "32M"])
        try Self.tool("/usr/bin/truncate", ["-s", "32M", dir + "/volatile.img"])

        // The share the host exports as `odybin`: the agent is a script that
        // reports on its channel, then powers the guest off.
        let bin = dir + "/odybin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try """
        #!/bin/sh
        port=${ODYSSEY_VCHAN#virtio-serial:}
        {
          echo "hello $ODYSSEY_DOMAIN"
          echo "pid $$ args $*"
          echo "vchan $ODYSSEY_VCHAN user $ODYSSEY_DEFAULT_USER hostname $(busybox hostname)"
          busybox awk '{print "mount " $2 " " $3 " " $4}' /proc/mounts
          echo "swaps $(busybox tail -n +2 /proc/swaps | busybox wc -l)"
          echo "modules $(busybox ls /lib/modules)"
          echo "end"
        } > "$port"
        busybox sync
        busybox poweroff -f
        """.write(toFile: bin + "/odyssey-agent", atomically: true, encoding: .utf8)
        chmod(bin + "/odyssey-agent", 0o755)

        let socket = dir + "/vchan.sock"
        let cmdline = "console=ttyS0 quiet panic=-1 odyssey.domain=kitvm odyssey.init=/.odyssey/bin/odyssey-agent "
            + "odyssey.trace=1 odyssey.env=ODYSSEY_DEFAULT_USER=user odyssey.share=odybin:/.odyssey/bin:ro "
            + "odyssey.vchan=virtio-serial:\(Self.portName)"
        let disks: [(String, String, Bool)] = [
            (dir + "/root.img", "odyssey-root", false), (dir + "/private.img", "odyssey-private", false),
            (dir + "/volatile.img", "odyssey-volatile", false), (entry + "/modules.img", "odyssey-modules", true),
        ]
        let started = Date()
        let vm = try Self.boot(entry: entry, cmdline: cmdline, disks: disks, shares: [("odybin", bin)],
                               socket: socket, console: dir + "/console.log")
        defer { if vm.isRunning { vm.terminate() } }

        let lines = try Self.readLines(from: socket, until: "end", process: vm, console: dir + "/console.log") { line in
            if line.hasPrefix("hello ") {
                print(String(format: "GuestKitTests: QEMU start to the agent's first line on virtio-serial: %.2f s (TCG, vmlinux PVH)",
                             Date().timeIntervalSince(started)))
            }
        }
        Self.waitForExit(vm, seconds: 120)
        let console = (try? String(contentsOfFile: dir + "/console.log", encoding: .utf8)) ?? ""

        XCTAssertEqual(lines.first, "hello kitvm", "the agent's first line; console:\n\(console)")
        XCTAssertTrue(lines.contains("pid 1 args --domain kitvm"), "the agent is PID 1 with --domain: \(lines)")
        let vchan = lines.first { $0.hasPrefix("vchan ") } ?? ""
        XCTAssertNotNil(vchan.range(of: #"^vchan virtio-serial:/dev/vport\d+p\d+ user user hostname kitvm$"#,
                                    options: .regularExpression), vchan)
        let mounts = Set(lines.filter { $0.hasPrefix("mount ") }.map { $0.split(separator: " ").prefix(3).joined(separator: " ") })
        for expected in ["mount / ext4", "mount /rw ext4", "mount /home ext4", "mount /.odyssey tmpfs",
                         "mount /.odyssey/bin 9p", "mount /lib/modules ext4", "mount /run tmpfs", "mount /tmp tmpfs",
                         "mount /dev devtmpfs", "mount /proc proc", "mount /sys sysfs", "mount /dev/pts devpts"] {
            XCTAssertTrue(mounts.contains(expected), "\(expected) missing: \(mounts.sorted())")
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("mount /.odyssey/bin 9p ro,") }, "the share is read-only: \(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("mount /lib/modules ext4 ro,") }, "modules are read-only: \(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("mount / ext4 rw,") }, "root is read-write: \(lines)")
        XCTAssertTrue(lines.contains("swaps 1"), "volatile is swap: \(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("modules 6.1.0-") }, "the kit's modules tree: \(lines)")
        XCTAssertTrue(console.range(of: #"odyssey-init: exec /.odyssey/bin/odyssey-agent \(uptime \d+\.\d+ s\)"#, options: .regularExpression) != nil, console)
        XCTAssertTrue(console.contains("odyssey-init: t="), "odyssey.trace=1 stamps the steps: \(console)")
        XCTAssertFalse(console.contains("vsock.ko"), "the vsock stack is loaded only for a vsock channel: \(console)")
        XCTAssertFalse(console.contains("odyssey-init: ERROR"), console)

        // The init made /rw/home on the private image itself (Qubes layout), and it outlives the boot.
        let privateRoot = try Self.tool("/sbin/debugfs", ["-R", "ls -p /", dir + "/private.img"])
        XCTAssertTrue(privateRoot.contains("/home/"), "private.img has no home/ after the boot: \(privateRoot)")
    }

    /// A command line the init refuses: the console says why and the guest
    /// powers itself off (QEMU exits); no shell, no agent.
    func testBadCommandLinePowersOffWithAnError() throws {
        let entry = try Self.buildKit()
        let dir = try Self.scratch("kit-refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The compressed kernel here (vmlinux, PVH, in the other boot): both files of the kit boot.
        let vm = try Self.boot(entry: entry, kernel: "vmlinuz",
                               cmdline: "console=ttyS0 quiet panic=-1 odyssey.domain=../evil odyssey.init=/x",
                               disks: [], shares: [], socket: dir + "/vchan.sock", console: dir + "/console.log")
        defer { if vm.isRunning { vm.terminate() } }
        Self.waitForExit(vm, seconds: 300)
        let console = (try? String(contentsOfFile: dir + "/console.log", encoding: .utf8)) ?? ""
        XCTAssertFalse(vm.isRunning, "the guest did not power off; console:\n\(console)")
        XCTAssertTrue(console.contains("odyssey-init: ERROR odyssey.domain= missing or not a domain name"), console)
        XCTAssertFalse(console.contains("odyssey-init: exec"), console)
    }

    /// `--help` teaches, a wrong argument is refused, and a rerun on a complete pool does nothing.
    func testGuestKitIsIdempotentAndExplainsItself() throws {
        _ = try Self.buildKit()
        let rerun = try Self.tool(Build.root + "/scripts/guest-kit", Self.kitArguments)
        XCTAssertTrue(rerun.contains("nothing to do"), rerun)
        XCTAssertTrue(try Self.tool(Build.root + "/scripts/guest-kit", ["--help"]).contains("--prefix DIR"))
        XCTAssertThrowsError(try Self.tool(Build.root + "/scripts/guest-kit", ["--bogus"])) { error in
            XCTAssertTrue("\(error)".contains("unknown argument: --bogus"), "\(error)")
        }
    }

    // MARK: - helpers

    /// Runs scripts/guest-kit (a no-op when the pool is complete); the default entry.
    static func buildKit() throws -> String {
        _ = try tool(Build.root + "/scripts/guest-kit", kitArguments)
        let entry = pool + "/default"
        for file in ["vmlinuz", "vmlinux", "initrd.img", "modules.img"] {
            guard FileManager.default.fileExists(atPath: entry + "/" + file) else {
                throw KitTestError("scripts/guest-kit left no \(entry)/\(file)")
            }
        }
        return entry
    }

    static func scratch(_ label: String) throws -> String {
        let dir = "/tmp/odyssey-\(label)-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// QEMU as a VM provider would run it: TCG, q35, direct kernel boot, disks
    /// by serial, 9p shares, one virtio-serial port to a Unix socket it listens on.
    static func boot(entry: String, kernel: String = "vmlinux", cmdline: String, disks: [(path: String, serial: String, readOnly: Bool)],
                     shares: [(tag: String, path: String)], socket: String, console: String) throws -> Process {
        var args = ["-accel", "tcg", "-machine", "q35", "-m", "256", "-nographic", "-nodefaults", "-no-reboot",
                    "-serial", "file:" + console, "-kernel", entry + "/" + kernel, "-initrd", entry + "/initrd.img",
                    "-append", cmdline]
        for (index, disk) in disks.enumerated() {
            args += ["-drive", "file=\(disk.path),if=none,id=disk\(index),format=raw\(disk.readOnly ? ",readonly=on" : "")",
                     "-device", "virtio-blk-pci,drive=disk\(index),serial=\(disk.serial)"]
        }
        for share in shares {
            args += ["-fsdev", "local,id=\(share.tag),path=\(share.path),security_model=none,readonly=on",
                     "-device", "virtio-9p-pci,fsdev=\(share.tag),mount_tag=\(share.tag)"]
        }
        args += ["-device", "virtio-serial-pci", "-chardev", "socket,id=vchan,path=\(socket),server=on,wait=off",
                 "-device", "virtserialport,chardev=vchan,name=\(portName)"]
        let vm = Process()
        vm.executableURL = URL(fileURLWithPath: qemu!)
        vm.arguments = args
        vm.standardInput = FileHandle.nullDevice
        vm.standardOutput = FileHandle.nullDevice
        try vm.run()
        return vm
    }

    /// Connects to QEMU's end of the port and reads lines until `last`, or
    /// until QEMU exits, or 300 s pass (a hang, not a speed bar).
    static func readLines(from socket: String, until last: String, process: Process, console: String,
                          onLine: (String) -> Void) throws -> [String] {
        let deadline = Date().addingTimeInterval(300)
        var fd: Int32 = -1
        while fd < 0 {
            guard process.isRunning, Date() < deadline else {
                throw KitTestError("QEMU never opened \(socket); console:\n\(tail(console))")
            }
            fd = connectUnix(socket)
            if fd < 0 { usleep(20_000) }
        }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](), lines = [String]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 {
                buffer += chunk[0..<n]
                while let newline = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<newline], as: UTF8.self)
                    buffer.removeSubrange(...newline)
                    lines.append(line); onLine(line)
                    if line == last { return lines }
                }
                guard buffer.count < 65536 else { throw KitTestError("an unterminated line of 64 KiB from the guest") }
            } else if n == 0 || !process.isRunning {
                break
            }
        }
        throw KitTestError("the guest sent no '\(last)' line; got \(lines); console:\n\(tail(console))")
    }

    static func connectUnix(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if ok != 0 { close(fd); return -1 }
        return fd
    }

    static func waitForExit(_ process: Process, seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
    }

    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no console log)"
        return text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Runs a tool (argv, no shell); its stdout, or an error with its stderr.
    @discardableResult
    static func tool(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process(), out = Pipe(), err = Pipe()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw KitTestError("\(path) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                               + String(decoding: stderr, as: UTF8.self))
        }
        return String(decoding: stdout, as: UTF8.self) + String(decoding: stderr, as: UTF8.self)
    }
}

struct KitTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
