// Domain XML from a domain's fixed fields and its provider-neutral
// description (ABI 1.2): the description says what the domain is, this file
// says how libvirt runs it (direct kernel boot, virtio disks found by serial,
// 9p shares, the agent's channel, a console log, no network, no graphics).
// Every value goes through XML.escape; values libvirt or the guest's command
// line cannot carry are refused here with what is wrong, before any XML exists.
import PluginKit

public struct DomainXMLError: Error, Equatable {
    public let message: String
    public init(_ m: String) { message = m }
}

public struct DomainXML {
    public var name: String
    public var uuid: String
    public var memoryMiB: UInt64
    public var maxmemMiB: UInt64
    public var vcpus: UInt32
    public var description: DomainDescription
    /// libvirt's <domain type>: "kvm" or "qemu" (TCG) boot a guest kernel; "test" (test:///) does not.
    public var domainType: String
    /// A per-domain shutdown bound (the admin's `shutdown_timeout` param), kept in the metadata.
    public var shutdownTimeout: Int?
    /// The defining odysseyd's `[vmm.libvirt] owner`, kept in the metadata.
    public var owner: String
    /// The uid:gid this domain's QEMU runs as (a static DAC label; libvirt
    /// then gives the domain's own images to that uid): nil leaves it to
    /// libvirt's configured user. See QemuUsers.swift.
    public var qemuUser: (uid: UInt32, gid: UInt32)?

    public init(name: String, uuid: String, memoryMiB: UInt64, maxmemMiB: UInt64, vcpus: UInt32,
                description: DomainDescription, domainType: String, shutdownTimeout: Int? = nil, owner: String = "") {
        self.name = name; self.uuid = uuid; self.memoryMiB = memoryMiB; self.maxmemMiB = maxmemMiB
        self.vcpus = vcpus; self.description = description; self.domainType = domainType
        self.shutdownTimeout = shutdownTimeout; self.owner = owner
    }

    var bootsKernel: Bool { domainType == "qemu" || domainType == "kvm" }

    /// The disk serial the guest's init finds a volume by (`/sys/block/vd*/serial`).
    public static func serial(_ role: VolumeDescription.Role) -> String {
        switch role {
        case .root: "odyssey-root"
        case .private: "odyssey-private"
        case .volatile: "odyssey-volatile"
        case .modules: "odyssey-modules"
        }
    }

    static func roleName(_ role: VolumeDescription.Role) -> String { String(serial(role).dropFirst("odyssey-".count)) }

    /// The XML and the files a start must make for it.
    public func build() -> Result<(xml: String, plan: StartPlan), DomainXMLError> {
        let d = description
        let e = XML.escape
        for (what, v) in [("name", name), ("uuid", uuid), ("kernel", d.kernel), ("initrd", d.initrd), ("kernelopts", d.kernelopts),
                          ("label", d.label), ("run_dir", d.runDir)] + d.volumes.map({ ("volume path", $0.path) })
            + d.shares.map({ ("share host_path", $0.hostPath) }) + [("channel path", d.channel?.path ?? ""), ("channel name", d.channel?.name ?? "")]
        where XML.hasControl(v) {
            return .failure(.init("\(what) contains a control character"))
        }
        guard !domainType.isEmpty, domainType.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) }) else {
            return .failure(.init("domain type \"\(domainType)\" must match [a-z0-9]+ (qemu, kvm, test)"))
        }
        guard memoryMiB > 0 else { return .failure(.init("memory_mib must be greater than 0")) }
        guard vcpus > 0 else { return .failure(.init("vcpus must be greater than 0")) }
        guard memoryMiB <= UInt64.max / 1024, maxmemMiB <= UInt64.max / 1024 else { return .failure(.init("memory size overflows")) }
        if bootsKernel && d.kernel.isEmpty {
            return .failure(.init("no guest kernel: a \(domainType) domain boots the guest kit's kernel and initrd; "
                + "run scripts/guest-kit (it fills /var/lib/odyssey/vm-kernels) or set the domain's kernel property"))
        }
        var plan = StartPlan()
        plan.owner = owner
        plan.runDir = d.runDir
        plan.shutdownTimeout = shutdownTimeout
        var slots = PCISlots(enabled: bootsKernel)
        var disks = ""
        var letter = UInt8(ascii: "a")
        for v in d.volumes.sorted(by: { $0.role.rawValue < $1.role.rawValue }) {
            let role = Self.roleName(v.role)
            var source = v.path, format = "raw"
            switch v.form {
            case .tree:
                return .failure(.init("volume \(role) is a directory tree (\(v.path)); libvirt boots disk images (the host sends IMAGE volumes to a BLOCK_VOLUMES provider)"))
            case .image:
                if v.snapshot {
                    guard d.runDir.hasPrefix("/") else { return .failure(.init("volume \(role) is a snapshot but the domain has no run_dir for its copy-on-write layer")) }
                    source = "\(d.runDir)/\(role).qcow2"
                    format = "qcow2"
                    plan.snapshots.append(.init(base: v.path, file: source))
                }
            case .none:
                guard d.runDir.hasPrefix("/") else { return .failure(.init("volume \(role) is made per start but the domain has no run_dir")) }
                source = "\(d.runDir)/\(role).img"
                plan.scratch.append(.init(file: source, sizeMiB: v.sizeMiB > 0 ? v.sizeMiB : 1024))
            }
            guard letter <= UInt8(ascii: "z") else { return .failure(.init("too many volumes")) }
            // Images other domains share (a template's root.img behind every
            // child's qcow2, the kit's modules.img) are never relabelled:
            // libvirt would chown them to QEMU's user and not give them back,
            // so any domain's QEMU could then write another domain's root.
            // QEMU reads them through their own mode (RunFiles makes sure).
            let keep = "<seclabel model='dac' relabel='no'/>"
            let src: String
            if v.snapshot {
                src = "<source file='\(e(source))'/><backingStore type='file'><format type='raw'/><source file='\(e(v.path))'>\(keep)</source><backingStore/></backingStore>"
            } else if v.readOnly {
                src = "<source file='\(e(source))'>\(keep)</source>"
            } else {
                src = "<source file='\(e(source))'/>"
            }
            disks += "    <disk type='file' device='disk'><driver name='qemu' type='\(format)'/>\(src)"
            disks += "<target dev='vd\(Character(Unicode.Scalar(letter)))' bus='virtio'/><serial>\(Self.serial(v.role))</serial>"
            disks += (v.readOnly ? "<readonly/>" : "") + slots.next() + "</disk>\n"
            letter += 1
        }
        var devices = disks
        for s in d.shares {
            devices += "    <filesystem type='mount' accessmode='squash'><source dir='\(e(s.hostPath))'/><target dir='\(e(s.tag))'/>"
            devices += (s.readOnly ? "<readonly/>" : "") + slots.next() + "</filesystem>\n"
        }
        if let ch = d.channel {
            switch ch.kind {
            case .virtioSerial:
                guard ch.path.hasPrefix("/"), !ch.name.isEmpty else {
                    return .failure(.init("virtio-serial channel needs an absolute socket path and a port name (got '\(ch.path)', '\(ch.name)')"))
                }
                plan.channelDir = String(ch.path[..<ch.path.lastIndex(of: "/")!])
                devices += "    <controller type='virtio-serial' index='0'>\(slots.next())</controller>\n"
                devices += "    <channel type='unix'><source mode='bind' path='\(e(ch.path))'/><target type='virtio' name='\(e(ch.name))'/></channel>\n"
            case .vsock:
                guard ch.cid >= 3 else { return .failure(.init("vsock channel: cid \(ch.cid) is reserved (guests start at 3)")) }
                devices += "    <vsock model='virtio'><cid auto='no' address='\(ch.cid)'/>\(slots.next())</vsock>\n"
            case .socketDir, .xen:
                return .failure(.init("channel kind \(ch.kind) cannot be wired into a libvirt domain (it takes virtio-serial or vsock)"))
            }
        }
        if bootsKernel {
            // The console to a file, so a guest that fails to boot can be read afterwards.
            if d.runDir.hasPrefix("/") {
                devices += "    <serial type='file'><source path='\(e(d.runDir))/console.log'/><target port='0'/></serial>\n"
            } else {
                devices += "    <serial type='pty'><target port='0'/></serial>\n"
            }
            // No balloon (memory is fixed per start); no network device (issue 16); no graphics.
            devices += "    <memballoon model='none'/>\n"
            // Entropy from the host: a TCG guest has no RDRAND, and its first
            // read of randomness (the agent's) otherwise waits about a second.
            devices += "    <rng model='virtio'><backend model='random'>/dev/urandom</backend>\(slots.next())</rng>\n"
            // No USB: libvirt would add an xHCI controller the guest probes at every boot.
            devices += "    <controller type='usb' model='none'/>\n"
            guard !slots.overflowed else { return .failure(.init("too many devices for one PCI bus (\(PCISlots.capacity) slots)")) }
        }

        var x = "<domain type='\(e(domainType))'>\n"
        x += "  <name>\(e(name))</name>\n"
        if !uuid.isEmpty { x += "  <uuid>\(e(uuid))</uuid>\n" }
        x += "  <metadata>\n    \(plan.metadata(label: d.label, uuid: uuid))\n  </metadata>\n"
        x += "  <memory unit='KiB'>\(max(memoryMiB, maxmemMiB) * 1024)</memory>\n"
        x += "  <currentMemory unit='KiB'>\(memoryMiB * 1024)</currentMemory>\n"
        x += "  <vcpu>\(vcpus)</vcpu>\n"
        x += "  <os>\n    <type arch='x86_64'\(bootsKernel ? " machine='q35'" : "")>hvm</type>\n"
        if bootsKernel {
            let cmdline: String
            switch GuestCommandLine.build(domain: name, d) {
            case .success(let c): cmdline = c
            case .failure(let f): return .failure(f)
            }
            x += "    <kernel>\(e(d.kernel))</kernel>\n"
            if !d.initrd.isEmpty { x += "    <initrd>\(e(d.initrd))</initrd>\n" }
            x += "    <cmdline>\(e(cmdline))</cmdline>\n"
        }
        x += "  </os>\n"
        // Without ACPI a QEMU guest's `poweroff` only halts the CPU, and the power button does nothing.
        if bootsKernel { x += "  <features><acpi/></features>\n" }
        x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n"
        if !devices.isEmpty { x += "  <devices>\n\(devices)  </devices>\n" }
        if bootsKernel, let u = qemuUser {
            x += "  <seclabel type='static' model='dac' relabel='yes'><label>+\(u.uid):+\(u.gid)</label></seclabel>\n"
        }
        x += "</domain>\n"
        return .success((x, plan))
    }
}

/// PCI addresses on q35's root bus (pcie.0) for a booted guest's virtio
/// devices, as integrated endpoints. Left to itself, libvirt puts each behind
/// a pcie-root-port of its own: ten bridges the guest kernel enumerates and
/// configures at every boot, about a second under TCG. Slot 0 is the host
/// bridge and 0x1f the ICH9 functions; 1 is left for a display.
struct PCISlots {
    static let first: UInt8 = 2, last: UInt8 = 0x1e
    static var capacity: Int { Int(last - first) + 1 }
    let enabled: Bool
    private var slot = PCISlots.first
    private(set) var overflowed = false

    init(enabled: Bool) { self.enabled = enabled }

    /// The next device's <address/> ("" where libvirt places devices, e.g. the test driver).
    mutating func next() -> String {
        guard enabled else { return "" }
        guard slot <= Self.last else { overflowed = true; return "" }
        defer { slot += 1 }
        return "<address type='pci' domain='0x0000' bus='0x00' slot='0x\(String(slot, radix: 16))' function='0x0'/>"
    }
}
