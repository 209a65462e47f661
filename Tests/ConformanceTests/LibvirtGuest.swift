// What the libvirt QEMU tier needs from the machine, found or made once per
// test process: libvirtd (scripts/libvirtd-up), QEMU, the guest kit's kernel
// pool (scripts/guest-kit), and a test initrd: the kit's own initrd with a
// second cpio archive appended (the kernel unpacks both; later files win)
// that replaces /init with a small one which reports what the guest sees
// (disk serials, shares, the boot words) on the console and powers off on
// the ACPI power button. The agent is not needed for these tests.
import Foundation
import XCTest

struct LibvirtGuest {
    let kernel: String
    let initrd: String

    /// ODYSSEY_VM_KERNELS overrides the pool (the kit's default).
    static var pool: String { ProcessInfo.processInfo.environment["ODYSSEY_VM_KERNELS"] ?? "/var/lib/odyssey/vm-kernels" }

    nonisolated(unsafe) private static var made: Result<LibvirtGuest, Error>?
    private static let lock = NSLock()

    /// The guest, or an XCTSkip saying what is missing and the command that makes it.
    static func shared() throws -> LibvirtGuest {
        lock.lock(); defer { lock.unlock() }
        if made == nil { made = Result { try make() } }
        return try made!.get()
    }

    static let initScript = """
    #!/bin/busybox sh
    /bin/busybox --install -s /bin
    mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
    while read -r m; do [ -n "$m" ] && insmod "$m" 2>/dev/null; done < /etc/modules.load
    insmod /extra/evdev.ko; insmod /extra/button.ko
    for i in $(seq 50); do [ -e /sys/block/vda ] && break; sleep 0.1; done
    for b in /sys/block/vd*; do echo "ODY-DISK ${b##*/} $(cat $b/serial)"; done
    for w in $(cat /proc/cmdline); do case $w in odyssey.*) echo "ODY-WORD $w";; esac; done
    mkdir -p /mnt/odybin && mount -t 9p -o trans=virtio,ro odybin /mnt/odybin && for f in /mnt/odybin/*; do echo "ODY-SHARE ${f##*/}"; done
    for p in /sys/class/virtio-ports/*; do [ -f $p/name ] && echo "ODY-PORT $(cat $p/name)"; done
    echo "ODY-GUEST up"
    for e in /dev/input/event*; do (head -c 1 $e >/dev/null; echo "ODY-GUEST power button"; poweroff -f) & done
    while :; do sleep 10; done

    """

    static var workDirectory: String { NSTemporaryDirectory() + "odyssey-libvirt-guest-\(getpid())" }

    static func removeWorkDirectory() {
        if ProcessInfo.processInfo.environment["ODYSSEY_TEST_KEEP"] == nil { try? FileManager.default.removeItem(atPath: workDirectory) }
    }

    private static func make() throws -> LibvirtGuest {
        let fm = FileManager.default
        for tool in ["/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", "/sbin/debugfs", "/usr/bin/cpio"] where !fm.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is missing: the libvirt QEMU tier needs qemu-system-x86, qemu-utils, e2fsprogs and cpio (scripts/install-deps)")
        }
        try startLibvirtd()
        let entry = pool + "/default"
        let kernel = entry + "/vmlinuz", kitInitrd = entry + "/initrd.img", modules = entry + "/modules.img"
        guard [kernel, kitInitrd, modules].allSatisfy({ fm.fileExists(atPath: $0) }) else {
            throw XCTSkip("no guest kernel in \(entry): run scripts/guest-kit (or set ODYSSEY_VM_KERNELS to a kernel pool)")
        }
        let version = URL(fileURLWithPath: (try? fm.destinationOfSymbolicLink(atPath: entry)) ?? entry).lastPathComponent
        let work = workDirectory
        try? fm.removeItem(atPath: work)
        try fm.createDirectory(atPath: work + "/extra", withIntermediateDirectories: true)
        for (m, path) in [("evdev", "drivers/input/evdev.ko"), ("button", "drivers/acpi/button.ko")] {
            try run("/sbin/debugfs", ["-R", "dump /\(version)/kernel/\(path) \(work)/extra/\(m).ko", modules])
            guard fm.fileExists(atPath: "\(work)/extra/\(m).ko") else { throw XCTSkip("\(m).ko not found in \(modules) (kernel \(version))") }
        }
        try initScript.write(toFile: work + "/init", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work + "/init")
        try run("/usr/bin/cpio", ["-o", "-H", "newc", "--quiet", "-F", work + "/extra.cpio"], cwd: work,
                stdin: "init\nextra\nextra/evdev.ko\nextra/button.ko\n")
        try run("/bin/gzip", ["-1", work + "/extra.cpio"])
        var image = try Data(contentsOf: URL(fileURLWithPath: kitInitrd))
        image.append(try Data(contentsOf: URL(fileURLWithPath: work + "/extra.cpio.gz")))
        let initrd = work + "/initrd.img"
        try image.write(to: URL(fileURLWithPath: initrd))
        return LibvirtGuest(kernel: kernel, initrd: initrd)
    }

    /// libvirtd through the project's own script (idempotent); without the
    /// script, an already running libvirtd is used.
    private static func startLibvirtd() throws {
        let script = Build.repoRoot + "/scripts/libvirtd-up"
        if FileManager.default.isExecutableFile(atPath: script) {
            try run(script, [])
        } else if !FileManager.default.fileExists(atPath: "/run/libvirt/libvirt-sock") {
            throw XCTSkip("libvirtd is not running and \(script) is missing (it comes with issue 12's guest kit)")
        }
    }

    @discardableResult
    static func run(_ tool: String, _ args: [String], cwd: String? = nil, stdin: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)); try input.fileHandleForWriting.close() }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "LibvirtGuest", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(tool) \(args.joined(separator: " ")) failed: \(text)"])
        }
        return text
    }
}
