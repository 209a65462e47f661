// admin.vm.notes.{Get,Set} and admin.vm.firewall.{Get,Set,Reload}, kept as
// files in the domain's directory (as qubesd keeps notes.txt and
// firewall.xml in the qube's), so they go with the domain when it is removed.
// Firewall rules are validated (FirewallRules.swift) and stored now; the
// network issue enforces them. A domain that never had rules has Qubes'
// default, `action=accept`.
import Domains
#if canImport(Glibc)
import Glibc
#endif

extension QubesAPI {
    func notesFirewallMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.vm.notes.Get", argument: .none, destination: .notAdminVM, scope: .local, access: .read) { [self] c throws(AdminError) in
                let path = try sideFile(c.dest, "notes.txt")
                guard FileOps.exists(path) else { return [] }
                return Array(try domain { () throws(DomainError) in try FileOps.readFile(path, limit: AdminRequest.maxSize) }.utf8)
            },
            AdminMethod("admin.vm.notes.Set", argument: .none, payload: .optional, destination: .notAdminVM, scope: .local, access: .write) { [self] c throws(AdminError) in
                guard let text = String(validating: c.payload, as: UTF8.self) else {
                    throw AdminError("QubesNotesError", "Unable to sanitise qube notes: they are not UTF-8")
                }
                try writeSideFile(try sideFile(c.dest, "notes.txt"), QubesAPI.displaySafe(text))
                return []
            },
            AdminMethod("admin.vm.firewall.Get", argument: .none, destination: .notAdminVM, scope: .local, access: .read) { [self] c throws(AdminError) in
                let now = Int64(time(nil))
                return QubesAPI.lines(try firewallRules(c.dest).filter { !$0.expired(now: now) }.map(\.apiText))
            },
            AdminMethod("admin.vm.firewall.Set", argument: .none, payload: .optional, destination: .notAdminVM, scope: .local, access: .write) { [self] c throws(AdminError) in
                let rules = try FirewallRule.parseRules(c.payload)
                try writeSideFile(try sideFile(c.dest, "firewall.rules"), String(decoding: QubesAPI.lines(rules.map(\.apiText)), as: UTF8.self))
                hub.publish([AdminEvent(subject: c.dest, name: "firewall-changed", domain: c.dest)])
                return []
            },
            // qubesd re-applies the rules (firewall-changed); enforcement is the network issue's.
            AdminMethod("admin.vm.firewall.Reload", argument: .none, destination: .notAdminVM, scope: .local, access: .execute) { [self] c throws(AdminError) in
                _ = try firewallRules(c.dest)
                hub.publish([AdminEvent(subject: c.dest, name: "firewall-changed", domain: c.dest)])
                return []
            },
        ]
    }

    /// The stored rules (checked again on the way out: the file is ours, but fail closed), or Qubes' default.
    func firewallRules(_ name: String) throws(AdminError) -> [FirewallRule] {
        let path = try sideFile(name, "firewall.rules")
        guard FileOps.exists(path) else { return FirewallRule.defaultRules }
        let text = try domain { () throws(DomainError) in try FileOps.readFile(path, limit: AdminRequest.maxSize) }
        return try FirewallRule.parseRules(Array(text.utf8))
    }

    /// A file of the domain's own in its directory (the domain must exist and have one).
    private func sideFile(_ name: String, _ file: String) throws(AdminError) -> String {
        _ = try existing(name)
        let dir = daemon.volumes.domainDir(name)
        guard FileOps.isDirectory(dir) else { throw AdminError("QubesException", "\(name) has no directory for its \(file) (\(dir))") }
        return "\(dir)/\(file)"
    }

    /// Written beside and renamed over: a reader sees the old content or the new, never half.
    private func writeSideFile(_ path: String, _ text: String) throws(AdminError) {
        let tmp = "\(path).tmp.\(UInt32.random(in: 0...UInt32.max))"
        try domain { () throws(DomainError) in
            do throws(DomainError) {
                try FileOps.writeFile(tmp, text, mode: 0o600)
                try FileOps.rename(tmp, path)
            } catch {
                _ = unlink(tmp)
                throw error
            }
        }
    }

    /// qubesd replaces what is not safe for display with `_` (libqubes-pure);
    /// here: control, format, private-use, surrogate, unassigned and line/paragraph
    /// separator code points, tab and newline excepted.
    static func displaySafe(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            switch s.properties.generalCategory {
            case .control where s == "\t" || s == "\n": out.append(s)
            case .control, .format, .privateUse, .surrogate, .unassigned, .lineSeparator, .paragraphSeparator:
                out.append("_")
            default: out.append(s)
            }
        }
        return String(out)
    }
}
