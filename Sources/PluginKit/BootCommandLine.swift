// The guest kernel command line of the boot contract (docs/guest-kit.md):
// the guest kit's init reads these words to find its domain name, agent,
// shares and channel. Every provider that boots the kit builds it here; it
// chooses only the channel word and the console. The kernel splits the line
// at spaces and honours double quotes, so a value with a space, a quote or
// a control character could smuggle in another option: refused, naming it.
public enum BootCommandLine {
    /// Why a description cannot go on the command line (the provider wraps it in its own error).
    public struct Refusal: Error, Equatable {
        public let message: String
        public init(_ m: String) { message = m }
    }

    /// `vchan`: the channel word's value (`virtio-serial:NAME`, `vsock:PORT`,
    /// `xen`); `console`: the guest's console device (`ttyS0`, `hvc0`).
    public static func build(domain: String, _ d: DomainDescription, vchan: String?, console: String) -> Result<String, Refusal> {
        var words: [String] = []
        func add(_ key: String, _ value: String, _ what: String) -> Refusal? {
            if let bad = value.unicodeScalars.first(where: { $0 == " " || $0 == "\"" || $0.value < 0x20 || $0.value == 0x7f }) {
                return Refusal("\(what) \"\(value)\" cannot go on the guest kernel command line: it contains "
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
        if let vchan, let e = add("odyssey.vchan", vchan, "channel") { return .failure(e) }
        words.append("console=\(console)")
        // kernelopts are the admin's words: split at spaces, each checked the
        // same way. An odyssey.* word there would override the contract's own
        // (the init takes the last), but for the boot trace, which only prints
        // timestamps.
        for opt in d.kernelopts.split(separator: " ", omittingEmptySubsequences: true) {
            if opt.hasPrefix("odyssey."), opt != "odyssey.trace=1" { return .failure(Refusal("kernelopts word \"\(opt)\": odyssey.* options are the provider's own")) }
            if let e = add("", String(opt), "kernelopts word") { return .failure(e) }
        }
        return .success(words.joined(separator: " "))
    }
}
