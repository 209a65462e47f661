import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// Read paths behind the Admin API bars (with 100 domains: property.Get 0.3 ms,
/// vm.List 2 ms, medians for the whole request) and the commit rate. Prints
/// the numbers; asserts generous bounds so a debug build on a busy CI passes.
final class PerfTests: XCTestCase {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func median(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var t: [Double] = []
        for _ in 0..<runs {
            let a = Self.now()
            try body()
            t.append(Self.now() - a)
        }
        return t.sorted()[runs / 2]
    }

    func testReadsWith100Domains() throws {
        let dir = makeTempDir(self, "perf")
        let s = try openStore(dir)
        try s.create("fedora", class: .templateVM, label: "black")
        var commit: [Double] = []
        for i in 0..<99 {
            let a = Self.now()
            try s.create("vm\(i)", class: .appVM, label: Label.builtin[i % 8].name, template: "fedora")
            commit.append(Self.now() - a)
        }
        XCTAssertEqual(s.snapshot().count, 101)
        let get = try median(2001) { _ = try s.property("memory", of: "vm50").qubesGetLine }
        let getVM = try median(2001) { _ = try s.property("template", of: "vm50").qubesGetLine }
        let list = median(501) {
            // admin.vm.List's content: one line per domain.
            var out = ""
            for d in s.allDomains() { out += "\(d.name) class=\(d.klass.rawValue) state=Halted uuid=\(d.uuid)\n" }
            XCTAssertFalse(out.isEmpty)
        }
        let getAll = try median(201) { _ = try s.snapshot().allProperties(of: "vm50").map(\.qubesGetLine) }
        let set = try median(201) { try s.setProperty("memory", of: "vm50", to: "500") }
        commit.sort()
        print(String("perf: property.Get \(get * 1e6) us, Get(vm) \(getVM * 1e6) us, vm.List(100) \(list * 1e6) us, "
                     + "GetAll \(getAll * 1e6) us, property.Set commit \(set * 1e6) us, create commit \(commit[commit.count / 2] * 1e6) us"))
        XCTAssertLessThan(get, 0.0003)
        XCTAssertLessThan(list, 0.002)
    }
}
