// Domain XML from an ody_domain_config plus its params. Every value that
// comes from a user goes through `XML.escape` (names, paths, command lines);
// values libvirt would reject anyway (control characters) are refused here
// with the key named, before any XML is built.
import PluginABI

enum XML {
    /// Escapes text for element content and for attributes in either quote style.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// True if `s` has a character XML 1.0 cannot carry (C0 controls other
    /// than tab, CR, LF) or that libvirt refuses in values (we also refuse CR/LF).
    static func hasControl(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }
}

/// Our metadata namespace inside libvirt domain XML: lets a later instance
/// read back what only Odyssey needs (the shutdown wait bound).
enum OdysseyMetadata {
    static let namespace = "urn:odyssey:vmm-libvirt:domain:1"
    static let prefix = "odyssey"

    /// The integer text of `<tag>N</tag>` inside a metadata element, or nil.
    static func integer(_ tag: String, in xml: String) -> Int? {
        guard let open = xml.range(of: "<\(tag)>"), let close = xml.range(of: "</\(tag)>"),
              open.upperBound <= close.lowerBound else { return nil }
        return Int(xml[open.upperBound..<close.lowerBound].trimmingSpaces)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        let u = Array(String(self).utf8)
        let space: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
        guard let a = u.firstIndex(where: { !space($0) }), let b = u.lastIndex(where: { !space($0) }) else { return "" }
        return String(decoding: u[a...b], as: UTF8.self)
    }

    func range(of needle: String) -> Range<Index>? {
        let hay = Array(self.utf8), n = Array(needle.utf8)
        guard !n.isEmpty, hay.count >= n.count else { return nil }
        for i in 0...(hay.count - n.count) where hay[i..<(i + n.count)].elementsEqual(n) {
            let lo = self.utf8.index(self.startIndex, offsetBy: i)
            return lo..<self.utf8.index(lo, offsetBy: n.count)
        }
        return nil
    }
}

struct DomainDefinition {
    var name: String
    var uuid: String
    var memoryMiB: UInt64
    var maxmemMiB: UInt64
    var vcpus: UInt32
    var params: [String: String]

    /// Params this backend reads (others are ignored, as the ABI says).
    static let knownParams = ["domain_type", "arch", "machine", "kernel", "initrd", "cmdline", "channel_path",
                              "channel_name", "console_log", "emulator", "shutdown_timeout"]

    /// Checks the values and builds the XML; `defaultType` comes from the URI.
    func xml(defaultType: String) -> Result<String, XMLError> {
        for k in Self.knownParams { if let v = params[k], XML.hasControl(v) { return .failure(.init("param \(k) contains a control character")) } }
        if XML.hasControl(uuid) { return .failure(.init("uuid contains a control character")) }
        let type = params["domain_type"] ?? defaultType
        guard !type.isEmpty, type.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) }) else {
            return .failure(.init("param domain_type \"\(type)\" must match [a-z0-9]+ (test, qemu, kvm, lxc, xen...)"))
        }
        guard memoryMiB > 0 else { return .failure(.init("memory_mib must be greater than 0")) }
        guard vcpus > 0 else { return .failure(.init("vcpus must be greater than 0")) }
        guard memoryMiB <= UInt64.max / 1024, maxmemMiB <= UInt64.max / 1024 else { return .failure(.init("memory size overflows")) }
        var timeout: Int?
        if let t = params["shutdown_timeout"] {
            guard let v = Int(t), v > 0 else { return .failure(.init("param shutdown_timeout \"\(t)\" must be a positive number of seconds")) }
            timeout = v
        }
        let e = XML.escape
        let maxKiB = max(memoryMiB, maxmemMiB) * 1024
        let isVM = type == "qemu" || type == "kvm"
        var x = "<domain type='\(e(type))'>\n"
        x += "  <name>\(e(name))</name>\n"
        if !uuid.isEmpty { x += "  <uuid>\(e(uuid))</uuid>\n" }
        x += "  <memory unit='KiB'>\(maxKiB)</memory>\n"
        x += "  <currentMemory unit='KiB'>\(memoryMiB * 1024)</currentMemory>\n"
        x += "  <vcpu>\(vcpus)</vcpu>\n"
        if let timeout {
            x += "  <metadata>\n    <\(OdysseyMetadata.prefix):domain xmlns:\(OdysseyMetadata.prefix)='\(e(OdysseyMetadata.namespace))'>"
            x += "<shutdown-timeout>\(timeout)</shutdown-timeout></\(OdysseyMetadata.prefix):domain>\n  </metadata>\n"
        }
        let arch = params["arch"] ?? "x86_64"
        var machine = ""
        if let m = params["machine"] { machine = " machine='\(e(m))'" } else if isVM { machine = " machine='q35'" }
        x += "  <os>\n    <type arch='\(e(arch))'\(machine)>hvm</type>\n"
        if let k = params["kernel"] { x += "    <kernel>\(e(k))</kernel>\n" }
        if let i = params["initrd"] { x += "    <initrd>\(e(i))</initrd>\n" }
        if let c = params["cmdline"] { x += "    <cmdline>\(e(c))</cmdline>\n" }
        x += "  </os>\n"
        // Without ACPI a QEMU guest's `poweroff` only halts the CPU.
        if isVM { x += "  <features><acpi/></features>\n" }
        x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n"
        var devices = ""
        if let em = params["emulator"] { devices += "    <emulator>\(e(em))</emulator>\n" }
        if let log = params["console_log"] {
            devices += "    <serial type='file'><source path='\(e(log))'/><target port='0'/></serial>\n"
        }
        if let path = params["channel_path"] {
            let chan = params["channel_name"] ?? "org.qubes-os.qrexec.0"
            devices += "    <channel type='unix'><source mode='bind' path='\(e(path))'/><target type='virtio' name='\(e(chan))'/></channel>\n"
        }
        if isVM { devices += "    <memballoon model='none'/>\n" }
        if !devices.isEmpty { x += "  <devices>\n\(devices)  </devices>\n" }
        x += "</domain>\n"
        return .success(x)
    }
}

struct XMLError: Error {
    let message: String
    init(_ m: String) { message = m }
}
