// Turns a parsed TOML table into OdysseyConfig, one checked key at a time.
import Foundation
import TOMLKit
import Logging

struct ConfigReader {
    let path: String
    let baseDir: String

    private func error(_ key: String, _ message: String) -> OdysseyError {
        OdysseyError(.config, "\(path): \(key): \(message)")
    }

    /// Relative paths in the file are relative to the file's own directory.
    private func resolve(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        return URL(fileURLWithPath: baseDir.isEmpty ? "." : baseDir).appendingPathComponent(p).standardized.path
    }

    private func string(_ v: TOMLValueConvertible, _ key: String) throws(OdysseyError) -> String {
        guard let s = v.string else { throw error(key, "expected a string, got \(v.type)") }
        return s
    }

    private func nonEmptyPath(_ v: TOMLValueConvertible, _ key: String) throws(OdysseyError) -> String {
        let s = try string(v, key)
        guard !s.isEmpty else { throw error(key, "must not be empty") }
        return resolve(s)
    }

    private func pathList(_ v: TOMLValueConvertible, _ key: String) throws(OdysseyError) -> [String] {
        guard let arr = v.array else { throw error(key, "expected an array of paths") }
        var out: [String] = []
        for (i, item) in arr.enumerated() { out.append(try nonEmptyPath(item, "\(key)[\(i)]")) }
        return out
    }

    mutating func read(_ table: TOMLTable) throws(OdysseyError) -> OdysseyConfig {
        var c = OdysseyConfig.defaults(path: path)
        // Keys in a fixed order so errors are reproducible.
        for (key, value) in table.sorted(by: { $0.0 < $1.0 }) {
            switch key {
            case "state_dir": c.stateDir = try nonEmptyPath(value, key)
            case "admin_socket": c.adminSocket = try nonEmptyPath(value, key)
            case "admin_socket_group":
                let g = try string(value, key)
                c.adminSocketGroup = g.isEmpty ? nil : g
            case "plugin_dirs": c.pluginDirs = try pathList(value, key)
            case "policy_dirs": c.policyDirs = try pathList(value, key)
            case "log_level":
                let s = try string(value, key)
                guard let level = Logger.Level(rawValue: s) else {
                    throw error(key, "'\(s)' is not one of trace, debug, info, notice, warning, error, critical")
                }
                c.logLevel = level
            case "ask_timeout":
                guard let n = value.int, n > 0, n <= 86400 else { throw error(key, "expected seconds between 1 and 86400") }
                c.askTimeoutSeconds = n
            default:
                if let kind = InterfaceKind(rawValue: key) {
                    guard let t = value.table else { throw error(key, "expected a table [\(key)]") }
                    c.roles[kind] = try role(t, kind: kind, previous: c.roles[kind])
                } else {
                    throw error(key, "unknown key (known: state_dir, admin_socket, admin_socket_group, plugin_dirs, policy_dirs, log_level, ask_timeout, [vmm], [vchan], [addon], [gui])")
                }
            }
        }
        return c
    }

    private func role(_ t: TOMLTable, kind: InterfaceKind, previous: OdysseyConfig.Role?) throws(OdysseyError) -> OdysseyConfig.Role {
        var r = OdysseyConfig.Role(defaultFactory: previous?.defaultFactory)
        for (key, value) in t.sorted(by: { $0.0 < $1.0 }) {
            let where_ = "\(kind.rawValue).\(key)"
            if key == "default" {
                let s = try string(value, where_)
                guard FactoryName.isValid(s) else { throw error(where_, "'\(s)' is not a factory name ([a-z0-9_-]+)") }
                r.defaultFactory = s
                continue
            }
            guard let section = value.table else {
                throw error(where_, "unknown key (expected `default = \"NAME\"` or a section [\(kind.rawValue).NAME])")
            }
            guard FactoryName.isValid(key) else { throw error(where_, "'\(key)' is not a factory name ([a-z0-9_-]+)") }
            var values: [String: String] = [:]
            for (k, v) in section {
                values[k] = try render(v, "[\(kind.rawValue).\(key)] \(k)")
            }
            r.sections[key] = values
        }
        return r
    }

    /// Backend values reach plugins as text through config_get.
    private func render(_ v: TOMLValueConvertible, _ key: String) throws(OdysseyError) -> String {
        switch v.type {
        case .string: return v.string!
        case .int: return String(v.int!)
        case .bool: return v.bool! ? "true" : "false"
        case .double: return String(v.double!)
        case .array:
            var parts: [String] = []
            for item in v.array! { parts.append(try render(item, key)) }
            return parts.joined(separator: "\n")
        default: throw error(key, "unsupported value type \(v.type) (use a string, number, boolean or array)")
        }
    }
}

/// Factory names appear in config, manifests and file names: keep them plain.
public enum FactoryName {
    public static func isValid(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 32 && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f || $0 == 0x2d }
    }
}
