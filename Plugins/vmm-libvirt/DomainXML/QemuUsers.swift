// Each VM's QEMU runs as a uid of its own (`[vmm.libvirt] qemu_uid_start`,
// 65,536 uids from there; the group stays libvirt-qemu's, which is how every
// QEMU reads the images VMs share). libvirt's DAC driver gives the domain's
// own files (its private image, its per-start qcow2 and scratch disks) to
// that uid for the run, so a QEMU that a guest took over reads and writes
// its own domain's disks and no other's: with one shared libvirt-qemu uid
// it could open every running VM's private image.
//
// The uid is chosen at define: the lowest of the range no domain on this
// libvirtd holds (whoever defined it: another odysseyd's too), read from the
// <label>s of their XML.
public enum QemuUsers {
    public static let count: UInt32 = 65_536

    /// The uids in [start, start+count) that `xml` (one domain's XML) labels its QEMU with.
    public static func labelled(in xml: String, start: UInt32) -> [UInt32] {
        var out: [UInt32] = []
        let b = Array(xml.utf8), mark = Array("<label>+".utf8)
        var i = 0
        while i + mark.count <= b.count {
            guard b[i..<(i + mark.count)].elementsEqual(mark) else { i += 1; continue }
            i += mark.count
            var n: UInt64 = 0, digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39, digits < 11 { n = n * 10 + UInt64(b[i] - 0x30); i += 1; digits += 1 }
            if digits > 0, n >= UInt64(start), n < UInt64(start) + UInt64(count) { out.append(UInt32(n)) }
        }
        return out
    }

    /// The lowest free uid of the range, nil when all are taken.
    public static func pick(start: UInt32, taken: Set<UInt32>) -> UInt32? {
        var u = start
        while UInt64(u) < UInt64(start) + UInt64(count) {
            if !taken.contains(u) { return u }
            u += 1
        }
        return nil
    }
}
