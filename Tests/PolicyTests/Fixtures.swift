import Foundation
import XCTest
@testable import Policy

/// The domains every golden case runs against.
enum Fixtures {
    static func uuid(_ last: Int) -> String {
        "aaaaaaaa-0000-0000-0000-" + String(repeating: "0", count: 12 - String(last, radix: 16).count)
            + String(last, radix: 16)
    }

    static let domains: [PolicyDomain] = [
        PolicyDomain(name: "dom0", type: "AdminVM", powerState: "Running",
                     uuid: "00000000-0000-0000-0000-000000000000"),
        PolicyDomain(name: "work", tags: ["work", "trusted"], defaultDispvm: "default-dvm", powerState: "Running",
                     uuid: uuid(1)),
        PolicyDomain(name: "personal", tags: ["personal"], defaultDispvm: "other-dvm", powerState: "Halted",
                     uuid: uuid(2)),
        PolicyDomain(name: "vault", tags: ["secret"], powerState: "Halted", uuid: uuid(3)),
        PolicyDomain(name: "default-dvm", tags: ["dvm"], templateForDispvms: true, defaultDispvm: "default-dvm",
                     powerState: "Running", uuid: uuid(4)),
        PolicyDomain(name: "other-dvm", templateForDispvms: true, powerState: "Halted", uuid: uuid(5)),
        PolicyDomain(name: "sys-net", tags: ["net"], defaultDispvm: "vault", powerState: "Running", uuid: uuid(6)),
        PolicyDomain(name: "hidden", tags: ["work"], powerState: "Running", uuid: uuid(7), internal: true),
        PolicyDomain(name: "fedora", type: "TemplateVM", powerState: "Halted", uuid: uuid(8)),
        PolicyDomain(name: "disp1", type: "DispVM", powerState: "Running", uuid: uuid(9)),
        PolicyDomain(name: "nodefault", defaultDispvm: "ghost", powerState: "Running", uuid: uuid(10)),
    ]

    static let system = PolicySystem(domains: domains)

    /// Compact text of a decision, for tables:
    /// `allow TARGET [user=U] [noautostart] [notify] @LINE`,
    /// `ask [A,B] [default=D] [user=U] [noautostart] [notify] @LINE`,
    /// `deny [@LINE] [quiet]`.
    static func summarize(_ decision: Decision) -> String {
        let line = decision.ruleLine.map { " @\($0)" } ?? ""
        var extras = ""
        if let user = decision.user { extras += " user=\(user)" }
        if !decision.autostart { extras += " noautostart" }
        if decision.notify { extras += " notify" }
        switch decision.resolution {
        case .allow:
            return "allow \(decision.target ?? "nil")\(extras)\(line)"
        case .ask:
            let choices = "[" + decision.targetsForAsk.joined(separator: ",") + "]"
            let preset = decision.defaultTarget.map { " default=\($0)" } ?? ""
            return "ask \(choices)\(preset)\(extras)\(line)"
        case .deny:
            return "deny\(line)\(decision.notify ? "" : " quiet")"
        }
    }

    /// A policy parsed from text; fails the test on a load error.
    static func policy(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> Policy {
        do {
            return try Policy.parse(text, path: "/golden/test.policy")
        } catch {
            XCTFail("policy did not load: \(error)", file: file, line: line)
            return Policy.denyAll
        }
    }

    /// The load error of a text, or nil.
    static func loadError(_ text: String, path: String = "/etc/p/test.policy") -> String? {
        do {
            _ = try Policy.parse(text, path: path)
            return nil
        } catch {
            return error.description
        }
    }
}

/// A directory under the system temp directory, removed by `cleanup()`.
final class TemporaryDirectory {
    let path: String

    init() {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/policy-tests-" + UUID().uuidString.lowercased()
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `text` at `relative` (creating directories) and returns the full path.
    @discardableResult
    func write(_ relative: String, _ text: String) -> String {
        let full = path + "/" + relative
        let directory = (full as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: full, contents: Data(text.utf8))
        return full
    }

    func makeDirectory(_ relative: String) -> String {
        let full = path + "/" + relative
        try? FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        return full
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
