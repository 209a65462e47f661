import XCTest
@testable import Domains

/// Random operations (many refused): the in-memory state must always equal
/// what a fresh open reads back from SQLite.
final class CacheConsistencyTests: XCTestCase {
    func dump(_ s: DomainStore) throws -> [String] {
        let snap = s.snapshot()
        var out: [String] = []
        for d in snap.allDomains() {
            out.append("\(d.name) \(d.klass) \(d.uuid) qid=\(d.qid) template=\(d.template ?? "-")")
            for p in try snap.allProperties(of: d.name) { out.append("  \(p.name) \(p.qubesGetLine)") }
            out.append("  tags \(try snap.tags(of: d.name))")
            out.append("  features \(try snap.features(of: d.name).sorted { $0.key < $1.key })")
            out.append("  keep \(try snap.revisionsToKeep(volume: "private", of: d.name))")
        }
        for g in snap.globalPropertyNames { out.append("global \(g) \(try snap.globalProperty(g).qubesGetLine)") }
        for l in snap.allLabels { out.append("label \(l.index) \(l.name) \(l.color)") }
        return out
    }

    static func pick<T>(_ a: [T]) -> T { a.randomElement()! }

    func testRandomOperationsMatchTheDatabase() throws {
        let dir = makeTempDir(self, "fuzz")
        var live: [String] = []
        var accepted = 0
        do {
            let s = try openStore(dir)
            let names = ["t1", "t2", "a1", "a2", "a3", "sa", "net", "d1"]
            let labels = ["red", "blue", "black", "teal", "nope"]
            let props = ["memory", "vcpus", "netvm", "provides_network", "template", "label", "vmm", "default_user",
                         "template_for_dispvms", "default_dispvm", "autostart", "kernelopts", "bogus"]
            let values = ["", "1", "0", "400", "True", "False", "t1", "t2", "a1", "net", "xen", "red", "teal", "bob", "-3"]
            for _ in 0..<1500 {
                let n = Self.pick(names)
                do {
                    switch Int.random(in: 0..<12) {
                    case 0: try s.create(n, class: n.hasPrefix("t") ? .templateVM : n == "sa" ? .standaloneVM : n == "d1" ? .dispVM : .appVM,
                                         label: n == "d1" ? nil : Self.pick(labels), template: n.hasPrefix("a") || n == "net" ? Self.pick(["t1", "t2"]) : n == "d1" ? "a1" : nil,
                                         caller: Self.pick([nil, "mgmt"]))
                    case 1: try s.remove(n)
                    case 2, 3, 4: try s.setProperty(Self.pick(props), of: n, to: Self.pick(values))
                    case 5: try s.resetProperty(Self.pick(props), of: n)
                    case 6: try s.setFeature(Self.pick(["f1", "f2"]), of: n, to: Self.pick(values))
                    case 7: try s.removeFeature(Self.pick(["f1", "f2"]), of: n)
                    case 8: try s.addTag(Self.pick(["x", "y"]), to: n)
                    case 9: try s.removeTag(Self.pick(["x", "y"]), from: n)
                    case 10: try s.setGlobalProperty(Self.pick(["default_netvm", "default_template", "default_vmm", "default_dispvm"]), to: Self.pick(values))
                    default:
                        if Bool.random() { try s.createLabel("teal", color: "0x008080") } else { try s.removeLabel("teal") }
                    }
                    accepted += 1
                } catch {
                    // refused: must have changed nothing (checked by the comparison below)
                }
            }
            live = try dump(s)
            XCTAssertEqual(try s.integrityCheck(), "ok")
        }
        let reopened = try openStore(dir)
        let fresh = try dump(reopened)
        XCTAssertEqual(live, fresh)
        XCTAssertGreaterThan(accepted, 100)
        print("cache-consistency: \(accepted) of 1500 random operations accepted; memory == database")
    }
}
