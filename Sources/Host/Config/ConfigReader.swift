// Turns a parsed TOML table into OdysseyConfig, one checked key at a time.
// Errors read "FILE:LINE: KEY: what is wrong".
import Logging

struct ConfigReader {
    let path: String
    let baseDir: String

    private func error(_ line: Int, _ key: String, _ message: String) -> OdysseyError {
        OdysseyError(.config, "\(path):\(line): \(key): \(message)")
    }

    /// Relative paths in the file are relative to the file's own directory.
    private func resolve(_ p: String) -> String { Path.resolve(p, relativeTo: baseDir) }

    private func string(_ v: TOMLValue, _ line: Int, _ key: String) throws(OdysseyError) -> String {
        guard case .string(let s) = v else { throw error(line, key, "expected a string, got \(v.typeName)") }
        return s
    }

    private func nonEmptyPath(_ v: TOMLValue, _ line: Int, _ key: String) throws(OdysseyError) -> String {
        let s = try string(v, line, key)
        guard !s.isEmpty else { throw error(line, key, "must not be empty") }
        return resolve(s)
    }

    private func pathList(_ v: TOMLValue, _ line: Int, _ key: String) throws(OdysseyError) -> [String] {
        guard case .array(let arr) = v else { throw error(line, key, "expected an array of paths, got \(v.typeName)") }
        var out: [String] = []
        for (i, item) in arr.enumerated() { out.append(try nonEmptyPath(item, line, "\(key)[\(i)]")) }
        return out
    }

    func read(_ table: TOMLTable) throws(OdysseyError) -> OdysseyConfig {
        var c = OdysseyConfig.defaults(path: path)
        for (key, value, line) in table.entries {
            switch key {
            case "state_dir": c.stateDir = try nonEmptyPath(value, line, key)
            case "admin_socket": c.adminSocket = try nonEmptyPath(value, line, key)
            case "admin_socket_group":
                let g = try string(value, line, key)
                c.adminSocketGroup = g.isEmpty ? nil : g
            case "plugin_dirs": c.pluginDirs = try pathList(value, line, key)
            case "policy_dirs": c.policyDirs = try pathList(value, line, key)
            case "agent_path": c.agentPath = try nonEmptyPath(value, line, key)
            case "rpc_dirs": c.rpcDirs = try pathList(value, line, key)
            case "domain_rpc_dir": c.domainRpcDir = try nonEmptyPath(value, line, key)
            case "kernel_dir": c.kernelDir = try nonEmptyPath(value, line, key)
            case "log_level":
                let s = try string(value, line, key)
                guard let level = Logger.Level(rawValue: s) else {
                    throw error(line, key, "'\(s)' is not one of trace, debug, info, notice, warning, error, critical")
                }
                c.logLevel = level
            case "ask_timeout":
                guard case .integer(let n) = value, n > 0, n <= 86400 else {
                    throw error(line, key, "expected seconds between 1 and 86400")
                }
                c.askTimeoutSeconds = n
            case "limits":
                guard case .table(let t) = value else { throw error(line, key, "expected a table [limits], got \(value.typeName)") }
                for (k, v, l) in t.entries {
                    guard case .integer(let n) = v else { throw error(l, "limits.\(k)", "expected an integer, got \(v.typeName)") }
                    if let why = c.limits.set(k, n) { throw error(l, "limits.\(k)", why) }
                }
            default:
                if let kind = InterfaceKind(rawValue: key) {
                    guard case .table(let t) = value else { throw error(line, key, "expected a table [\(key)], got \(value.typeName)") }
                    c.roles[kind] = try role(t, kind: kind, previous: c.roles[kind])
                } else {
                    throw error(line, key, "unknown key (known: state_dir, admin_socket, admin_socket_group, plugin_dirs, policy_dirs, agent_path, rpc_dirs, domain_rpc_dir, kernel_dir, log_level, ask_timeout, [limits], [vmm], [vchan], [addon], [gui])")
                }
            }
        }
        return c
    }

    private func role(_ t: TOMLTable, kind: InterfaceKind, previous: OdysseyConfig.Role?) throws(OdysseyError) -> OdysseyConfig.Role {
        var r = OdysseyConfig.Role(defaultFactory: previous?.defaultFactory, prefer: previous?.prefer ?? [])
        for (key, value, line) in t.entries {
            let qualified = "\(kind.rawValue).\(key)"
            if key == "prefer" {
                guard case .array(let items) = value else { throw error(line, qualified, "expected an array of factory names") }
                var names: [String] = []
                for item in items {
                    let s = try string(item, line, qualified)
                    guard FactoryName.isValid(s) else { throw error(line, qualified, "'\(s)' is not a factory name ([a-z0-9_-]+)") }
                    names.append(s)
                }
                r.prefer = names
                continue
            }
            if key == "default" {
                let s = try string(value, line, qualified)
                guard FactoryName.isValid(s) else { throw error(line, qualified, "'\(s)' is not a factory name ([a-z0-9_-]+)") }
                r.defaultFactory = s
                continue
            }
            guard case .table(let section) = value else {
                throw error(line, qualified, "unknown key (expected `default = \"NAME\"` or a section [\(kind.rawValue).NAME])")
            }
            guard FactoryName.isValid(key) else { throw error(line, qualified, "'\(key)' is not a factory name ([a-z0-9_-]+)") }
            var values: [String: String] = [:]
            for (k, v, l) in section.entries {
                values[k] = try render(v, l, "[\(kind.rawValue).\(key)] \(k)")
            }
            r.sections[key] = values
        }
        return r
    }

    /// Backend values reach plugins as text through config_get.
    private func render(_ v: TOMLValue, _ line: Int, _ key: String) throws(OdysseyError) -> String {
        switch v {
        case .string(let s): return s
        case .integer(let n): return String(n)
        case .boolean(let b): return b ? "true" : "false"
        case .float(let d): return String(d)
        case .array(let items):
            var parts: [String] = []
            for item in items { parts.append(try render(item, line, key)) }
            return parts.joined(separator: "\n")
        case .table: throw error(line, key, "unsupported value type table (use a string, number, boolean or array)")
        }
    }
}

/// Factory names appear in config, manifests and file names: keep them plain.
public enum FactoryName {
    public static func isValid(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 32 && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f || $0 == 0x2d }
    }
}
