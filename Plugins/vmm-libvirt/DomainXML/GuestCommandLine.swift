// The guest kernel command line of the boot contract (docs: the issue-12
// design contract, "Guest boot contract"): the kit's init reads these words
// to find its domain name, agent, shares and channel. The kernel splits the
// line at spaces and honours double quotes, so a value with a space, a quote
// or a control character could smuggle in another option: refused, naming it.
import PluginKit

public enum GuestCommandLine {
    /// The default vsock port of the agent when the channel names none.
    public static let defaultVsockPort: UInt32 = 1024

    public static func build(domain: String, _ d: DomainDescription) -> Result<String, DomainXMLError> {
        var words: [String] = []
        func add(_ key: String, _ value: String, _ what: String) -> DomainXMLError? {
            if let bad = value.unicodeScalars.first(where: { $0 == " " || $0 == "\"" || $0.value < 0x20 || $0.value == 0x7f }) {
                return DomainXMLError("\(what) \"\(value)\" cannot go on the guest kernel command line: it contains "
                    + (bad == " " ? "a space" : bad == "\"" ? "a double quote" : "a control character"))
            }
            words.append(key.isEmpty ? value : "\(key)=\(value)")
            return nil
        }
        if let e = add("odyssey.domain", domain, "domain name") { return .failure(e) }
        if !d.agentPath.isEmpty, let e = add("odyssey.init", d.agentPath, "agent_path") { return .failure(e) }
        for env in d.agentEnv { if let e = add("odyssey.env", env, "agent_env entry") { return .failure(e) } }
        for s in d.shares {
            if let e = add("odyssey.share", "\(s.tag):\(s.guestPath)\(s.readOnly ? ":ro" : "")", "share \(s.tag)") { return .failure(e) }
        }
        if let ch = d.channel {
            switch ch.kind {
            case .virtioSerial: if let e = add("odyssey.vchan", "virtio-serial:\(ch.name)", "channel name") { return .failure(e) }
            case .vsock: words.append("odyssey.vchan=vsock:\(vsockPort(ch))")
            case .xen, .socketDir: break  // refused by DomainXML before we get here
            }
        }
        words.append("console=ttyS0")
        // kernelopts are the admin's words: split at spaces, each checked the same way.
        // An odyssey.* word there would override the contract's own (the init takes the last).
        for opt in d.kernelopts.split(separator: " ", omittingEmptySubsequences: true) {
            // But the boot trace, which only prints timestamps (docs/guest-kit.md).
            if opt.hasPrefix("odyssey."), opt != "odyssey.trace=1" { return .failure(DomainXMLError("kernelopts word \"\(opt)\": odyssey.* options are the provider's own")) }
            if let e = add("", String(opt), "kernelopts word") { return .failure(e) }
        }
        return .success(words.joined(separator: " "))
    }

    /// A VSOCK channel's port: its `name` when that is a decimal port number, else the default.
    public static func vsockPort(_ ch: ChannelDescription) -> UInt32 {
        UInt32(ch.name).flatMap { $0 > 0 ? $0 : nil } ?? defaultVsockPort
    }
}
