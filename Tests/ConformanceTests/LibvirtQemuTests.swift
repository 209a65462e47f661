// vmm-libvirt against a real libvirtd with QEMU (TCG): the generic body with
// direct kernel boot, ACPI shutdown, a serial console log and a virtio-serial
// channel. Opt-in: it needs libvirtd running (qemu-system-x86 installed) and
// a guest kernel + initrd whose init prints "ODY-GUEST up" on the serial
// console and powers off on the ACPI power button:
//   ODYSSEY_QEMU_KERNEL=/path/vmlinuz ODYSSEY_QEMU_INITRD=/path/initrd.gz
//   [ODYSSEY_LIBVIRT_URI=qemu:///system] swift test --filter LibvirtQemuTests
// Such an initrd (busybox-static at /bin/busybox, plus evdev.ko and
// button.ko of the Debian guest kernel's modules) needs only this /init:
//   #!/bin/busybox sh
//   /bin/busybox --install -s /bin
//   mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
//   insmod /lib/modules/$KVER/kernel/drivers/input/evdev.ko
//   insmod /lib/modules/$KVER/kernel/drivers/acpi/button.ko
//   echo "ODY-GUEST up"
//   for e in /dev/input/event*; do (head -c 1 $e >/dev/null; poweroff -f) & done
//   while :; do sleep 10; done
import Foundation
import Host
import PluginABI
import XCTest

final class LibvirtQemuTests: XCTestCase {
    func testConformanceOnQemu() throws {
        let env = ProcessInfo.processInfo.environment
        guard let kernel = env["ODYSSEY_QEMU_KERNEL"], let initrd = env["ODYSSEY_QEMU_INITRD"] else {
            throw XCTSkip("opt-in: set ODYSSEY_QEMU_KERNEL and ODYSSEY_QEMU_INITRD (and run libvirtd) to test vmm-libvirt on QEMU")
        }
        let uri = env["ODYSSEY_LIBVIRT_URI"] ?? "qemu:///system"
        let fx = try HostFixture(products: ["vmm-libvirt"], configBody: """
        [vmm.libvirt]
        uri = "\(uri)"
        shutdown_timeout = 60
        """)
        let vmm = try fx.backends.vmm("libvirt")
        func console(_ name: String) -> String {
            "\(fx.dir)/console-\(name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? String($0) : "_" }.joined()).log"
        }
        var body = VmmConformance(backend: vmm, recorder: fx.recorder, spec: { name in
            DomainSpec(name: name, memoryMiB: 256, vcpus: 1, params: [
                ("kernel", kernel), ("initrd", initrd), ("cmdline", "console=ttyS0 quiet panic=-1"),
                ("console_log", console(name)),
                ("channel_path", "\(fx.dir)/\(abs(name.hashValue)).sock"), ("channel_name", "org.odyssey.test.0"),
            ])
        })
        body.waitReady = { name in
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let log = try? String(contentsOfFile: console(name), encoding: .utf8), log.contains("ODY-GUEST up") { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
            XCTFail("guest \(name) did not come up within 60 s")
        }
        try body.runAll()
        for e in fx.recorder.all where e.kind == .lifecycle && e.domain.hasSuffix("life") {
            print("event \(e.domain) \(e.state.rawValue) \(e.message)")
        }
    }
}
