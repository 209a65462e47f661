// Qubes' admin client's own requests, byte for byte, replayed against a fresh
// daemon (issue 14, item 7). The conversation was captured once from the real
// client (testRecordConversation, run with ODYSSEY_RECORD_QUBES=1, writes
// Tests/Fixtures/qubes-conversations/session.jsonl: one call a line, request
// and reply); the replay needs no client and checks every reply byte for
// byte, after naming what differs between two runs (UUIDs, clone tokens,
// the temporary directory, sizes and usage).
import Foundation
import XCTest
@testable import Host

final class QubesConversationTests: XCTestCase {
    static let fixture = Repo.root + "/Tests/Fixtures/qubes-conversations/session.jsonl"

    /// The session: what a Qubes admin would type, in order.
    static let session: [(String, [String])] = [
        ("qvm_create", ["-C", "TemplateVM", "-l", "black", "tpl"]),
        ("qvm_create", ["-t", "tpl", "-l", "blue", "work"]),
        ("qvm_tags", ["work", "add", "mine"]),
        ("qvm_features", ["work", "foo", "bar"]),
        ("qvm_prefs", ["work", "memory", "500"]),
        ("qvm_notes", ["work", "--set", "hello notes"]),
        ("qvm_firewall", ["work", "add", "--before", "0", "drop", "dsthost=10.0.0.0/8"]),
        ("qvm_clone", ["work", "work2"]),
        ("qvm_firewall", ["work2", "--raw", "list"]),
        ("qvm_notes", ["work2", "--print"]),
        ("qvm_device", ["pci", "list"]),
        ("qvm_create", ["-P", "default", "-t", "tpl", "-l", "red", "pooled"]),
        ("qvm_tags", ["work", "add", "isolation-xen"]),
        ("qvm_prefs", ["work"]),
        ("qvm_ls", []),
        ("qvm_volume", ["list"]),
        ("qvm_pool", []),
        ("qubes_prefs", []),
        ("qvm_features", ["work2"]),
        ("qvm_tags", ["work2"]),
        ("qvm_firewall", ["work", "del", "--rule-no", "0"]),
        ("qvm_device", ["usb", "attach", "work", "sys-usb:2-1"]),
        ("qvm_remove", ["-f", "work2"]),
    ]

    func testRecordConversation() throws {
        guard ProcessInfo.processInfo.environment["ODYSSEY_RECORD_QUBES"] == "1" else {
            throw XCTSkip("records the fixture only with ODYSSEY_RECORD_QUBES=1 (the replay below checks it)")
        }
        let c = try QubesClient()
        let path = c.harness.dir + "/session.jsonl"
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o666])
        c.recordPath = path
        for (tool, args) in Self.session { _ = try QubesClient.capture(c.command(tool, args)) }
        try? FileManager.default.removeItem(atPath: Self.fixture)
        try FileManager.default.copyItem(atPath: path, toPath: Self.fixture)
    }

    func testReplayMatchesByteForByte() throws {
        let text = try String(contentsOfFile: Self.fixture, encoding: .utf8)
        let calls = text.split(separator: "\n").map { line -> (request: String, reply: String) in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
            return (o["request"]!, o["reply"]!)
        }
        XCTAssertGreaterThan(calls.count, 50, "the session's calls")
        let h = try AdminHarness()
        try h.startSocket()
        var names = Normalizer()
        var compared = 0
        for (recordedRequest, recordedReply) in calls {
            let request = names.liveRequest(recordedRequest)
            let live = String(decoding: try rawCall(h.socket, Array(request.utf8)), as: UTF8.self)
            names.learn(request: request, recorded: recordedReply, live: live)
            XCTAssertEqual(names.normal(live), names.normal(recordedReply), "reply to \(request.prefix(80).debugDescription)")
            compared += 1
        }
        XCTAssertEqual(compared, calls.count)
        // The session's effect, as the client left it.
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work"), "hello notes")
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work"), "action=accept\n", "rule 0 deleted")
        XCTAssertEqual(h.fails("admin.vm.List", dest: "work2").type, "QubesVMNotFoundError", "the clone removed")
        XCTAssertEqual(h.ok("admin.vm.List", dest: "pooled").split(separator: " ").first, "pooled")
    }

    /// What differs between two runs of the same session, named.
    struct Normalizer {
        private var uuids: [String: String] = [:]      // recorded -> live
        private var tokens: [String: String] = [:]

        static let uuid = try! NSRegularExpression(pattern: "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        static let volatile = try! NSRegularExpression(pattern: "(size|usage|mem|cputime)=[0-9]+")
        static let tempDir = try! NSRegularExpression(pattern: "odyssey-admin-[0-9A-F]{8}")

        /// The recorded request with the recorded UUIDs and tokens replaced by this run's.
        func liveRequest(_ r: String) -> String {
            var out = r
            for (a, b) in uuids { out = out.replacingOccurrences(of: a, with: b) }
            for (a, b) in tokens { out = out.replacingOccurrences(of: a, with: b) }
            return out
        }

        mutating func learn(request: String, recorded: String, live: String) {
            if request.hasPrefix("admin.vm.volume.CloneFrom"), recorded.hasPrefix("0\0"), live.hasPrefix("0\0") {
                tokens[String(recorded.dropFirst(2))] = String(live.dropFirst(2))
            }
            if request.hasPrefix("admin.vm.List"), recorded.hasPrefix("0\0"), live.hasPrefix("0\0") {
                let byName = { (s: String) in Dictionary(s.dropFirst(2).split(separator: "\n").compactMap { line -> (String, String)? in
                    guard let u = line.split(separator: " ").last(where: { $0.hasPrefix("uuid=") }) else { return nil }
                    return (String(line.split(separator: " ")[0]), String(u.dropFirst(5)))
                }, uniquingKeysWith: { a, _ in a }) }
                let r = byName(recorded), l = byName(live)
                for (name, u) in r { if let v = l[name] { uuids[u] = v } }
            }
        }

        func normal(_ s: String) -> String {
            var out = s
            for (_, b) in tokens { out = out.replacingOccurrences(of: b, with: "TOKEN") }
            for (a, _) in tokens { out = out.replacingOccurrences(of: a, with: "TOKEN") }
            for (re, with) in [(Self.uuid, "UUID"), (Self.volatile, "$1=N"), (Self.tempDir, "odyssey-admin-DIR")] {
                out = re.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: with)
            }
            return out
        }
    }
}
