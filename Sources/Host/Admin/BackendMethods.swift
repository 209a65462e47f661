// admin.odyssey.vmm.*: direct access to a vmm backend's domains, by backend
// (argument = factory name, empty = default). The low-level HAL view used by
// `ody backend`, tests and the demo; the domain store builds on top of it.
//
// Every one of them is dom0's alone, whatever the policy grants: Define passes
// raw backend parameters (`root_dir`, `bind_ro.*` host paths, `init`, `argN`),
// which made a delegate root on the host (issue 11, finding 10), and the
// others act on backend domains by name, around the store and its policy.

struct BackendMethods {
    unowned let daemon: Daemon

    static let hostInternal = CallerRule.adminDomainOnly(why: "raw backend parameters and domains outside the store are host-internal")

    private func vmm(_ r: AdminRequest) throws(AdminError) -> VmmBackend {
        do throws(OdysseyError) { return try daemon.backends.vmm(r.argument.isEmpty ? nil : r.argument) } catch { throw error.adminError }
    }

    private func perDomain(_ name: String, _ body: @escaping @Sendable (VmmBackend, String) throws(OdysseyError) -> Void) -> AdminMethod {
        AdminMethod(name: "admin.odyssey.vmm.\(name)", takesArgument: true, takesPayload: false, destMustBeAdmin: false,
                    callers: BackendMethods.hostInternal) { [daemon] r throws(AdminError) in
            let v = try BackendMethods(daemon: daemon).vmm(r)
            do throws(OdysseyError) { try body(v, r.dest) } catch { throw error.adminError }
            return []
        }
    }

    func methods() -> [AdminMethod] {
        [
            AdminMethod(name: "admin.odyssey.vmm.List", takesArgument: true, takesPayload: false, destMustBeAdmin: true,
                        callers: BackendMethods.hostInternal) { [daemon] r throws(AdminError) in
                let v = try BackendMethods(daemon: daemon).vmm(r)
                do throws(OdysseyError) {
                    var lines = ""
                    for n in try v.list() {
                        let i = try v.info(n)
                        lines += "\(n) state=\(i.state.rawValue) backend=\(v.factory.name)\n"
                    }
                    return Array(lines.utf8)
                } catch { throw error.adminError }
            },
            AdminMethod(name: "admin.odyssey.vmm.Define", takesArgument: true, takesPayload: true, destMustBeAdmin: false,
                        callers: BackendMethods.hostInternal) { [daemon] r throws(AdminError) in
                let v = try BackendMethods(daemon: daemon).vmm(r)
                let spec = try DefinePayload.parse(name: r.dest, payload: r.payload)
                do throws(OdysseyError) { try v.define(spec) } catch { throw error.adminError }
                return []
            },
            AdminMethod(name: "admin.odyssey.vmm.Info", takesArgument: true, takesPayload: false, destMustBeAdmin: false,
                        callers: BackendMethods.hostInternal) { [daemon] r throws(AdminError) in
                let v = try BackendMethods(daemon: daemon).vmm(r)
                do throws(OdysseyError) {
                    let i = try v.info(r.dest)
                    return Array("name=\(i.name) state=\(i.state.rawValue) uuid=\(i.uuid) mem_kib=\(i.memoryKiB) maxmem_kib=\(i.maxmemKiB) vcpus=\(i.vcpus) cputime_ns=\(i.cputimeNs) pid=\(i.pid)".utf8)
                } catch { throw error.adminError }
            },
            perDomain("Undefine") { v, n throws(OdysseyError) in try v.undefine(n) },
            perDomain("Start") { v, n throws(OdysseyError) in try v.start(n) },
            perDomain("Shutdown") { v, n throws(OdysseyError) in try v.shutdown(n, wait: true) },
            perDomain("Kill") { v, n throws(OdysseyError) in try v.kill(n) },
            perDomain("Pause") { v, n throws(OdysseyError) in try v.pause(n) },
            perDomain("Unpause") { v, n throws(OdysseyError) in try v.unpause(n) },
        ]
    }
}

/// Payload of admin.odyssey.vmm.Define: lines `memory=MiB`, `maxmem=MiB`,
/// `vcpus=N`, `uuid=U`, and any other `key=value` passed to the backend as a param.
enum DefinePayload {
    static func parse(name: String, payload: [UInt8]) throws(AdminError) -> DomainSpec {
        guard let text = String(validating: payload, as: UTF8.self) else { throw AdminError("QubesValueError", "payload is not UTF-8") }
        var spec = DomainSpec(name: name)
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard let eq = line.firstIndex(of: "=") else { throw AdminError("QubesValueError", "expected key=value, got '\(line)'") }
            let k = String(line[..<eq]), v = String(line[line.index(after: eq)...])
            switch k {
            case "memory", "maxmem":
                guard let n = UInt64(v), n > 0, n <= 1 << 20 else { throw AdminError("QubesValueError", "\(k) must be MiB between 1 and 1048576") }
                if k == "memory" { spec.memoryMiB = n } else { spec.maxmemMiB = n }
            case "vcpus":
                guard let n = UInt32(v), n > 0, n <= 512 else { throw AdminError("QubesValueError", "vcpus must be between 1 and 512") }
                spec.vcpus = n
            case "uuid": spec.uuid = v
            default: spec.params.append((k, v))
            }
        }
        return spec
    }
}
