// The add-on part of a manifest factory (kind "addon"): the services it
// provides and on which side, the client commands it installs in domains,
// its default policy file (beside the manifest), and the events it hooks.
//
//   "services": [{"name": "qubes.Filecopy", "side": "domain"}],
//   "commands": ["ody-copy", "ody-move"],
//   "policy": "70-filecopy.policy",
//   "events": ["domain-started"]
//
// Every name here ends up as a file name in the add-ons view and in the
// domains (AddonView.swift), so each is checked against a strict pattern.

enum AddonManifest {
    /// Lifecycle events an add-on may hook (on_event), named after the power
    /// state the domain reached.
    static let knownEvents: Set<String> = ["domain-running", "domain-paused", "domain-halted", "domain-crashed"]

    static func read(_ item: ManifestJSON, into f: inout PluginManifest.Factory, at path: String) throws(OdysseyError) {
        let keys = ["services", "commands", "policy", "events"]
        guard f.kind == .addon else {
            if let k = keys.first(where: { item[$0] != nil }) {
                throw OdysseyError(.plugin, "manifest field \"\(path).\(k)\" is only for add-on factories")
            }
            return
        }
        if let v = item["services"] {
            guard case .array(let list) = v else { throw wrong(path, "services") }
            for (i, s) in list.enumerated() {
                let at = "\(path).services[\(i)]"
                guard case .string(let name)? = s["name"] else { throw OdysseyError(.plugin, "manifest field \"\(at).name\" must be a string") }
                guard case .string(let sideText)? = s["side"], let side = PluginManifest.AddonService.Side(rawValue: sideText) else {
                    throw OdysseyError(.plugin, "manifest field \"\(at).side\" must be \"domain\" or \"admin\"")
                }
                guard isServiceName(name) else {
                    throw OdysseyError(.plugin, "manifest service \"\(name)\" must be 1-255 bytes of [A-Za-z0-9._-], not starting with '.' (no '+': arguments are the caller's)")
                }
                guard !f.services.contains(where: { $0.name == name }) else { throw OdysseyError(.plugin, "manifest lists service \"\(name)\" twice") }
                f.services.append(.init(name: name, side: side))
            }
        }
        if let v = item["commands"] {
            guard case .array(let list) = v else { throw wrong(path, "commands") }
            for c in list {
                guard case .string(let name) = c, isCommandName(name) else {
                    throw OdysseyError(.plugin, "manifest field \"\(path).commands\": each command must be 1-64 bytes of [a-z0-9._-], starting with a letter or digit")
                }
                guard !f.commands.contains(name) else { throw OdysseyError(.plugin, "manifest lists command \"\(name)\" twice") }
                f.commands.append(name)
            }
        }
        if let v = item["policy"], v != .null {
            guard case .string(let file) = v, isPolicyFileName(file) else {
                throw OdysseyError(.plugin, "manifest field \"\(path).policy\" must be a file name like 70-NAME.policy beside the manifest")
            }
            f.policy = file
        }
        if let v = item["events"] {
            guard case .array(let list) = v else { throw wrong(path, "events") }
            for e in list {
                guard case .string(let name) = e, knownEvents.contains(name) else {
                    throw OdysseyError(.plugin, "manifest field \"\(path).events\": known events are \(knownEvents.sorted().joined(separator: ", "))")
                }
                f.events.append(name)
            }
        }
        if f.services.isEmpty && f.commands.isEmpty && f.events.isEmpty {
            throw OdysseyError(.plugin, "manifest add-on factory \"\(f.name)\" provides no services, commands or events")
        }
    }

    private static func wrong(_ path: String, _ k: String) -> OdysseyError {
        OdysseyError(.plugin, "manifest field \"\(path).\(k)\" must be a list")
    }

    static func isServiceName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return !b.isEmpty && b.count <= 255 && b[0] != UInt8(ascii: ".")
            && b.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    static func isCommandName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= 64, isLowerOrDigit(first) else { return false }
        return b.allSatisfy { isLowerOrDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    static func isPolicyFileName(_ s: String) -> Bool {
        s.hasSuffix(".policy") && !s.hasPrefix(".") && s.utf8.count <= 128
            && s.utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }
    private static func isLowerOrDigit(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) }
}
