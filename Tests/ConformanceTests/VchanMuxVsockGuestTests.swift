// The mux over real AF_VSOCK, inside a TCG guest: this host has no
// /dev/vhost-vsock and AF_VSOCK must never be opened on it, so the test
// boots the kit's kernel with a tiny initrd (busybox, vsock_loopback and its
// dependencies from the kit's modules image, odyssey-mux-vsock-check) and
// reads the verdict from the serial console. ~10 s under TCG.
import Foundation
import XCTest

final class VchanMuxVsockGuestTests: XCTestCase {
    static let kernelDir = ProcessInfo.processInfo.environment["ODYSSEY_VM_KERNEL_DIR"] ?? "/var/lib/odyssey/vm-kernels/default"

    func which(_ name: String) -> String? {
        for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") {
            return "\(d)/\(name)"
        }
        return nil
    }

    @discardableResult
    func run(_ exe: String, _ args: [String], stdin: String? = nil, stdout: String? = nil, timeout: TimeInterval = 60) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let stdin { p.standardInput = FileHandle(forReadingAtPath: stdin) }
        if let stdout { FileManager.default.createFile(atPath: stdout, contents: nil); p.standardOutput = FileHandle(forWritingAtPath: stdout) }
        else { p.standardOutput = FileHandle.nullDevice }
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); XCTFail("\(exe) still running after \(Int(timeout)) s") }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func testMuxOverVsockLoopbackInAGuest() throws {
        let kernel = ["vmlinuz", "vmlinux"].map { "\(Self.kernelDir)/\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
        let modules = "\(Self.kernelDir)/modules.img"
        let check = Build.dir + "/odyssey-mux-vsock-check"
        var missing: [String] = []
        if kernel == nil { missing.append("a kernel in \(Self.kernelDir) (run scripts/guest-kit)") }
        if !FileManager.default.fileExists(atPath: modules) { missing.append(modules) }
        if !FileManager.default.fileExists(atPath: check) { missing.append("\(check) (swift build)") }
        let tools = ["qemu-system-x86_64", "busybox", "cpio", "debugfs"].map { ($0, which($0)) }
        missing += tools.filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty, let kernel else {
            print("VchanMuxVsockGuestTests: not run, missing: \(missing.joined(separator: ", "))")
            return
        }
        let tool = Dictionary(uniqueKeysWithValues: tools.map { ($0.0, $0.1!) })
        let dir = NSTemporaryDirectory() + "omv-\(UUID().uuidString.prefix(8))"
        let root = dir + "/root"
        defer { if ProcessInfo.processInfo.environment["ODYSSEY_TEST_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) } else { print("kept \(dir)") } }
        let fm = FileManager.default
        for d in ["bin", "proc", "sys", "dev", "lib/vsock"] { try fm.createDirectory(atPath: "\(root)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: tool["busybox"]!, toPath: root + "/bin/busybox")
        try fm.copyItem(atPath: check, toPath: root + "/odyssey-mux-vsock-check")
        // The modules image holds <version>/kernel/...; its one top directory is the version.
        let ls = dir + "/ls.txt"
        try run(tool["debugfs"]!, ["-R", "ls -p /", modules], stdout: ls)
        let top = try String(contentsOfFile: ls, encoding: .utf8).split(separator: "\n")
            .compactMap { line -> String? in let f = line.split(separator: "/"); return f.count >= 5 ? String(f[4]) : nil }   // /ino/mode/uid/gid/name/
            .first { $0.first?.isNumber == true }
        guard let top else { return XCTFail("no kernel version directory in \(modules)") }
        let mods = ["vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"]
        for m in mods {
            try run(tool["debugfs"]!, ["-R", "dump /\(top)/kernel/net/vmw_vsock/\(m).ko \(root)/lib/vsock/\(m).ko", modules])
            XCTAssertTrue(fm.fileExists(atPath: "\(root)/lib/vsock/\(m).ko"), "\(m).ko from \(modules)")
        }
        let initScript = """
        #!/bin/busybox sh
        /bin/busybox mount -t proc proc /proc
        /bin/busybox mount -t devtmpfs dev /dev
        for m in \(mods.joined(separator: " ")); do /bin/busybox insmod /lib/vsock/$m.ko || echo "MUX VSOCK FAILED: insmod $m"; done
        /odyssey-mux-vsock-check
        /bin/busybox poweroff -f
        """
        try initScript.write(toFile: root + "/init", atomically: true, encoding: .utf8)
        chmod(root + "/init", 0o755)
        // cpio reads the file list from stdin, relative to the current directory.
        let list = dir + "/list.txt"
        let files = ["init", "bin", "bin/busybox", "proc", "sys", "dev", "lib", "lib/vsock", "odyssey-mux-vsock-check"]
            + mods.map { "lib/vsock/\($0).ko" }
        try files.joined(separator: "\n").appending("\n").write(toFile: list, atomically: true, encoding: .utf8)
        let cwd = fm.currentDirectoryPath
        fm.changeCurrentDirectoryPath(root)
        let rc = try run(tool["cpio"]!, ["-o", "-H", "newc"], stdin: list, stdout: dir + "/initrd.cpio")
        fm.changeCurrentDirectoryPath(cwd)
        XCTAssertEqual(rc, 0, "cpio")
        let serial = dir + "/serial.log"
        let start = Date()
        try run(tool["qemu-system-x86_64"]!, ["-accel", "tcg", "-machine", "q35", "-m", "512", "-nographic", "-no-reboot", "-nodefaults",
                                              "-serial", "file:\(serial)", "-kernel", kernel, "-initrd", dir + "/initrd.cpio",
                                              "-append", "console=ttyS0 quiet panic=-1"], timeout: 400)
        let log = (try? String(contentsOfFile: serial, encoding: .utf8)) ?? ""
        for line in log.split(whereSeparator: \.isNewline) where line.contains("mux over vsock") || line.contains("MUX VSOCK") || line.contains("accepted a vsock") || line.contains("step:") || line.contains("Illegal") {
            print("guest: \(line)")
        }
        print("VchanMuxVsockGuestTests: guest boot and check took \(Int(Date().timeIntervalSince(start))) s (TCG)")
        XCTAssertTrue(log.contains("MUX VSOCK OK"), "the guest's verdict; its console said:\n\(log.suffix(3000))")
    }
}
