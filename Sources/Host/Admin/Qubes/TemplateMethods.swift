// admin.odyssey.template.Create+from-host|from-rootfs, payload
// `name=NAME label=LABEL [source=PATH]` (source: the rest of its line, for
// from-rootfs: a directory or a tarball). Answers `linked=N copied=N ... seconds=S`.
//
// from-rootfs is dom0's alone, whatever the policy grants: its source is a
// host path, and a delegate used it to copy another domain's private volume
// (GPG keys included) into a template it owned (issue 11, finding 10).
// from-host takes no path: it builds from the host's system directories minus
// every secret in HostTemplateRules, so it stays grantable (admin-global-rwx).
import Domains

extension QubesAPI {
    func templateMethods() -> [AdminMethod] {
        [
            AdminMethod("admin.odyssey.template.Create", argument: .required, payload: .required, destination: .adminVM,
                        scope: .global, access: .write) { [self] c throws(AdminError) in
                guard c.argument == "from-host" || c.argument == "from-rootfs" else {
                    throw .protocolError("argument must be from-host or from-rootfs")
                }
                if c.argument == "from-rootfs" && c.caller != AdminPermission.adminDomain {
                    throw AdminError.adminDomainOnly("admin.odyssey.template.Create+from-rootfs", why: "its source is a host path")
                }
                let kv = try QubesAPI.templatePayload(c.payload)
                guard let name = kv["name"] else { throw .protocolError("Missing name") }
                let label = kv["label"] ?? "black"
                let caller = c.caller == AdminPermission.adminDomain ? nil : c.caller
                let builder = TemplateBuilder(store: store, volumes: daemon.volumes)
                let report: TemplateReport
                if c.argument == "from-host" {
                    guard kv["source"] == nil else { throw .protocolError("from-host takes no source") }
                    report = try domain { () throws(DomainError) in try builder.createFromHost(name, label: label, caller: caller) }
                } else {
                    guard let source = kv["source"], source.hasPrefix("/") else {
                        throw .value("from-rootfs needs source=ABSOLUTE-PATH (a directory or a tarball)")
                    }
                    report = try domain { () throws(DomainError) in try builder.createFromRootfs(name, source: source, label: label, caller: caller) }
                }
                let secs = Double(Int(report.seconds * 10)) / 10
                return Array("linked=\(report.linked) copied=\(report.copied) symlinks=\(report.symlinks) directories=\(report.directories) excluded=\(report.excludedCount) seconds=\(secs)".utf8)
            },
        ]
    }

    /// `name=.. label=..` separated by spaces or newlines; `source=` takes the rest of its line.
    static func templatePayload(_ payload: [UInt8]) throws(AdminError) -> [String: String] {
        var out: [String: String] = [:]
        for line in try text(payload).split(separator: "\n") {
            var rest = Substring(line)
            while !rest.isEmpty {
                while rest.first == " " { rest = rest.dropFirst() }
                if rest.isEmpty { break }
                let token: Substring
                if rest.hasPrefix("source=") { token = rest; rest = "" } else {
                    let end = rest.firstIndex(of: " ") ?? rest.endIndex
                    token = rest[..<end]; rest = rest[end...]
                }
                guard let eq = token.firstIndex(of: "=") else { throw .protocolError("Invalid param name") }
                let k = String(token[..<eq]), v = String(token[token.index(after: eq)...])
                guard ["name", "label", "source"].contains(k) else { throw .protocolError("Invalid param name") }
                guard out[k] == nil else { throw .protocolError("duplicated parameters") }
                out[k] = v
            }
        }
        return out
    }
}
