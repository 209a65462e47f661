// Turning Admin API text into stored values, with every Qubes rule that a
// property's setter enforces. All checks run against the state being built
// inside the transaction, so they see earlier changes of the same operation.

extension DomainsSnapshot {
    /// Parses and checks `text` for property `def` of domain `r` (nil: a global property).
    /// Returns the raw stored form.
    func parse(_ def: PropertyDefinition, _ text: String, for r: DomainRecord?) throws(DomainError) -> String {
        let owner = r?.name
        func bad(_ reason: String) -> DomainError {
            .propertyValue(domain: owner, property: def.name, value: text, reason: reason)
        }
        guard !def.readOnly else { throw .propertyAccess(domain: owner, property: def.name, reason: "read-only") }
        guard !text.utf8.contains(0), !text.utf8.contains(10) else { throw bad("must not contain NUL or newline") }
        switch def.type {
        case .bool:
            guard let b = PropertyTable.parseBool(text) else { throw bad("expected True or False") }
            let raw = b ? "True" : "False"
            if let r { try checkBool(def.name, b, r, bad) }
            return raw
        case .int:
            guard let n = Int(text), n > 0 else { throw bad("expected a positive integer") }
            if let max = PropertyTable.intMaximum[def.name], n > max { throw bad("expected a positive integer at most \(max)") }
            return String(n)
        case .label:
            guard labels[text] != nil else { throw .labelNotFound(text) }
            return text
        case .str:
            try checkString(def.name, text, bad)
            return text
        case .vm:
            if text.isEmpty {                       // qubesd: an empty value is None
                guard def.allowNone else { throw bad("cannot be None") }
                return ""
            }
            guard let target = domains[text] else { throw bad("no such domain") }
            try checkVM(def.name, target, for: r, bad)
            return target.uuid.text
        }
    }

    private func checkString(_ name: String, _ text: String, _ bad: (String) -> DomainError) throws(DomainError) {
        switch name {
        case "vmm", "default_vmm":
            // A vmm factory name: what plugins register (`native`, `libvirt`, `xen`).
            guard !text.isEmpty, text.utf8.count <= 32,
                  text.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || DomainName.isDigit($0) || $0 == 45 || $0 == 95 }) else {
                throw bad("expected a provider name of 1 to 32 characters a-z, 0-9, '-', '_'")
            }
        case "kernel", "default_kernel":
            // Qubes: a name in the kernel pool (/var/lib/qubes/vm-kernels/NAME),
            // never a path: `kernel=/etc/shadow` must not reach a backend.
            let u = Array(text.utf8)
            guard u.isEmpty || (u.count <= PropertyTable.maxKernelNameBytes && u[0] != UInt8(ascii: ".")
                && u.allSatisfy({ DomainName.isLetter($0) || DomainName.isDigit($0) || $0 == 46 || $0 == 95 || $0 == 45 || $0 == 43 })) else {
                throw bad("expected a kernel name (A-Z, a-z, 0-9, '.', '_', '-', '+', not starting with '.', at most \(PropertyTable.maxKernelNameBytes) characters), never a path")
            }
        case "kernelopts":
            guard text.utf8.count <= PropertyTable.maxKerneloptsBytes, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
                throw bad("expected printable ASCII of at most \(PropertyTable.maxKerneloptsBytes) bytes")
            }
        case "virt_mode":
            guard ["pv", "pvh", "hvm"].contains(text) else { throw bad("expected pv, pvh or hvm") }
        case "default_user":
            let u = Array(text.utf8)
            guard !u.isEmpty, u.count <= 32, DomainName.isLetter(u[0]) || u[0] == 95,
                  u.allSatisfy({ DomainName.isLetter($0) || DomainName.isDigit($0) || $0 == 95 || $0 == 45 }) else {
                throw bad("expected a user name ([a-zA-Z_][a-zA-Z0-9_-]*, at most 32 characters)")
            }
        case "keyboard_layout":
            // qubesd's rules: LAYOUT+VARIANT+OPTIONS, ASCII; layout letters only.
            let parts = text.split(separator: "+", omittingEmptySubsequences: false).map { Array($0.utf8) }
            guard text.utf8.count <= 128, parts.count == 3 else { throw bad("expected LAYOUT+VARIANT+OPTIONS (us++), at most 128 characters") }
            let word = { (b: UInt8) in DomainName.isLetter(b) || DomainName.isDigit(b) || b == 45 || b == 95 }
            guard !parts[0].isEmpty, parts[0].allSatisfy(DomainName.isLetter) else { throw bad("Invalid keyboard layout provided") }
            guard parts[1].allSatisfy(word) else { throw bad("Invalid layout variant provided") }
            guard parts[2].allSatisfy({ word($0) || $0 == 58 || $0 == 44 }) else { throw bad("Invalid layout options provided") }
        case "default_pool", "default_pool_kernel", "default_pool_private", "default_pool_root", "default_pool_volatile":
            guard text == VolumeManager.pool else { throw bad("No such storage pool (Odyssey has one: \(VolumeManager.pool))") }
        default: break
        }
    }

    private func checkBool(_ name: String, _ value: Bool, _ r: DomainRecord, _ bad: (String) -> DomainError) throws(DomainError) {
        switch name {
        case "provides_network" where !value:
            let users = domains.values.filter { $0.name != r.name && rawEffective("netvm", $0) == r.uuid.text }.map(\.name).sorted()
            if !users.isEmpty {
                throw .vmInUse(domain: r.name, reason: "it is the netvm of \(users.joined(separator: ", ")); it must keep provides_network")
            }
        case "template_for_dispvms" where !value:
            let disps = domains.values.filter { $0.klass == .dispVM && $0.properties["template"] == r.uuid.text }.map(\.name).sorted()
            if !disps.isEmpty {
                throw .vmInUse(domain: r.name, reason: "disposables \(disps.joined(separator: ", ")) are based on it")
            }
        default: break
        }
    }

    /// Refuses a new name that a person would read as an existing domain's:
    /// `vauIt` beside `vault`, `Work` beside `work`, `w0rk` beside `work`
    /// (issue 11, finding 16). Stricter than Qubes, which compares exactly.
    func checkNotConfusable(_ name: String) throws(DomainError) {
        let folded = DomainsSnapshot.confusableFold(name)
        for other in domains.keys where other != name && DomainsSnapshot.confusableFold(other) == folded {
            throw .value("domain name '\(name)' is too easily read as the existing domain '\(other)'")
        }
    }

    /// One spelling per look: case folded, I/l/1 as l, O/0 as o, and '_', '.'
    /// and '-' as '-' (names are ASCII, DomainName.validate made sure).
    static func confusableFold(_ name: String) -> String {
        String(name.lowercased().map { c -> Character in
            switch c {
            case "i", "1": "l"
            case "0": "o"
            case "_", ".": "-"
            default: c
            }
        })
    }

    /// Whether `r` can be a disposable template.
    func isDispTemplate(_ r: DomainRecord) -> Bool {
        (r.klass == .appVM || r.klass == .standaloneVM) && rawEffective("template_for_dispvms", r) == "True"
    }

    private func checkVM(_ name: String, _ target: DomainRecord, for r: DomainRecord?, _ bad: (String) -> DomainError) throws(DomainError) {
        switch name {
        case "template":
            guard let r else { return }
            if r.klass == .dispVM {
                guard isDispTemplate(target) else {
                    throw bad("'\(target.name)' is not a disposable template (an AppVM with template_for_dispvms=True)")
                }
            } else if target.klass != .templateVM {
                throw bad("'\(target.name)' is a \(target.klass.rawValue), not a TemplateVM")
            }
        case "default_template":
            guard target.klass == .templateVM else { throw bad("'\(target.name)' is a \(target.klass.rawValue), not a TemplateVM") }
        case "netvm", "default_netvm", "updatevm", "clockvm":
            if name == "netvm" || name == "default_netvm" {
                guard rawEffective("provides_network", target) == "True" else {
                    throw bad("'\(target.name)' does not provide network (provides_network=False)")
                }
            }
            if let r, name == "netvm" {
                guard target.name != r.name else { throw bad("a domain cannot be its own netvm") }
                var cur = target
                for _ in 0..<domains.count {
                    guard let next = rawEffective("netvm", cur), !next.isEmpty, let n = nameByUUID[DomainUUID(unchecked: next)],
                          let nr = domains[n] else { break }
                    if nr.name == r.name { throw bad("loop in network: \(target.name) already uses \(r.name)") }
                    cur = nr
                }
            }
        case "default_dispvm", "management_dispvm":
            guard isDispTemplate(target) else {
                throw bad("'\(target.name)' is not a disposable template (template_for_dispvms=False)")
            }
        default: break
        }
    }

    /// Whole-state checks run before every commit (a backstop for changes
    /// through defaults: a reset or a global change can create what a
    /// direct set would have refused).
    func checkInvariants() throws(DomainError) {
        for r in domains.values where r.klass != .adminVM {
            var seen: Set<String> = [r.name]
            var cur = r
            while let next = rawEffective("netvm", cur), !next.isEmpty {
                guard let n = nameByUUID[DomainUUID(unchecked: next)], let nr = domains[n] else { break }
                guard rawEffective("provides_network", nr) == "True" else {
                    throw .propertyValue(domain: cur.name, property: "netvm", value: n,
                                         reason: "'\(n)' does not provide network (provides_network=False)")
                }
                guard seen.insert(n).inserted else {
                    throw .propertyValue(domain: cur.name, property: "netvm", value: n, reason: "loop in network through \(n)")
                }
                cur = nr
            }
        }
    }
}
