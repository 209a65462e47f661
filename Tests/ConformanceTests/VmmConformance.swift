// The one generic vmm conformance body. Every backend runs the same checks
// through the host's VmmBackend (so NULL slots, status mapping and the list
// retry are the host's real code paths); a thin wrapper per backend supplies
// the opened backend and how to make a bootable domain spec.
import Foundation
import Host
import PluginABI
import XCTest

struct VmmConformance {
    let backend: VmmBackend
    let recorder: EventRecorder
    /// The EventBus source of this backend's events ("vmm.libvirt").
    var source: String { "vmm.\(backend.factory.name)" }
    /// A spec that `start` can boot, for a given name.
    let spec: (String) -> DomainSpec
    /// Waits until a started domain's guest can react to a shutdown request
    /// (a real VM boots for seconds; process backends need nothing).
    var waitReady: (String) throws -> Void = { _ in }
    /// Per-run prefix so parallel runs and leftovers never collide.
    let prefix = "cf\(UInt32.random(in: 0..<UInt32.max) % 100_000)-"

    var capabilities: UInt64 { backend.factory.capabilities }
    func has(_ cap: UInt64) -> Bool { capabilities & cap != 0 }

    func state(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> PowerState {
        try backend.info(name).state
    }

    /// Every check by name, in an order that leaves nothing behind when it passes.
    var checks: [(name: String, run: () throws -> Void)] {
        [("lifecycle", lifecycle), ("duplicateName", duplicateName), ("unknownFlags", unknownFlags),
         ("unknownNames", unknownNames), ("xmlSpecialNames", xmlSpecialNames), ("listBeyondFirstBuffer", listBeyondFirstBuffer)]
    }

    func runAll() throws {
        for check in checks { try check.run() }
    }

    /// define → listed → Halted → start → Running (+ event) → pause/unpause →
    /// shutdown(wait) → Halted → undefine → gone.
    func lifecycle() throws {
        let name = prefix + "life"
        try backend.define(spec(name))
        XCTAssertTrue(try backend.list().contains(name), "defined domain missing from list")
        let info = try backend.info(name)
        XCTAssertEqual(info.state, .halted)
        XCTAssertEqual(info.name, name)

        try backend.start(name)
        XCTAssertEqual(try state(name), .running)
        if has(ODY_VMM_CAP_LIFECYCLE_EVENTS) {
            XCTAssertNotNil(recorder.lifecycle(source, name, .running), "no Running lifecycle event for \(name) on the EventBus")
        }
        if has(ODY_VMM_CAP_PAUSE) {
            try backend.pause(name)
            XCTAssertEqual(try state(name), .paused)
            if has(ODY_VMM_CAP_LIFECYCLE_EVENTS) {
                XCTAssertNotNil(recorder.lifecycle(source, name, .paused), "no Paused lifecycle event")
            }
            try backend.unpause(name)
            XCTAssertEqual(try state(name), .running)
        } else {
            expectError(.unsupported, "pause without the PAUSE capability") { try backend.pause(name) }
        }
        expectError(.state, "start of a running domain") { try backend.start(name) }
        expectError(.state, "undefine of a running domain") { try backend.undefine(name) }

        try waitReady(name)
        try backend.shutdown(name, wait: true)
        XCTAssertEqual(try state(name), .halted)
        if has(ODY_VMM_CAP_LIFECYCLE_EVENTS) {
            XCTAssertNotNil(recorder.lifecycle(source, name, .halted), "no Halted lifecycle event after shutdown")
        }
        expectError(.state, "shutdown of a halted domain") { try backend.shutdown(name) }

        // kill is the other way down.
        try backend.start(name)
        try backend.kill(name)
        XCTAssertEqual(try state(name), .halted)

        try backend.undefine(name)
        XCTAssertFalse(try backend.list().contains(name), "undefined domain still listed")
        expectError(.notFound, "info after undefine") { _ = try backend.info(name) }
    }

    func duplicateName() throws {
        let name = prefix + "dup"
        try backend.define(spec(name))
        defer { try? backend.undefine(name) }
        expectError(.exists, "define of a duplicate name") { try backend.define(spec(name)) }
        // The first definition is intact.
        XCTAssertEqual(try state(name), .halted)
        XCTAssertEqual(try backend.list().filter { $0 == name }.count, 1)
    }

    /// Unknown bits (and a kind-specific bit on the wrong op) are refused
    /// with a clear error, before anything happens.
    func unknownFlags() throws {
        let name = prefix + "flags"
        let bogus: UInt32 = 1 << 31
        if let e = expectError(.invalid, "define with unknown flag bits", { try backend.define(spec(name), flags: bogus) }) {
            XCTAssertTrue(e.message.contains("flag"), "unclear flags error: \(e)")
        }
        XCTAssertFalse(try backend.list().contains(name), "define with bad flags defined the domain anyway")
        try backend.define(spec(name))
        defer { try? backend.undefine(name) }
        for (op, call) in [("start", { (f: UInt32) throws in try backend.start(name, flags: f) }),
                           ("kill", { (f: UInt32) throws in try backend.kill(name, flags: f) }),
                           ("pause", { (f: UInt32) throws in try backend.pause(name, flags: f) }),
                           ("unpause", { (f: UInt32) throws in try backend.unpause(name, flags: f) }),
                           ("undefine", { (f: UInt32) throws in try backend.undefine(name, flags: f) })] {
            if op.hasSuffix("pause") && !has(ODY_VMM_CAP_PAUSE) { continue }
            if let e = expectError(.invalid, "\(op) with unknown flag bits", { try call(bogus) }) {
                XCTAssertTrue(e.message.contains("flag"), "unclear flags error for \(op): \(e)")
            }
        }
        // SHUTDOWN_WAIT is a shutdown flag; start must not accept it.
        expectError(.invalid, "start with ODY_VMM_SHUTDOWN_WAIT") { try backend.start(name, flags: ODY_VMM_SHUTDOWN_WAIT) }
        XCTAssertEqual(try state(name), .halted, "an op with bad flags changed the domain")
        XCTAssertTrue(try backend.list().contains(name), "undefine with bad flags removed the domain")
    }

    func unknownNames() throws {
        let ghost = prefix + "no-such-domain"
        expectError(.notFound, "info of an unknown name") { _ = try backend.info(ghost) }
        expectError(.notFound, "start of an unknown name") { try backend.start(ghost) }
        expectError(.notFound, "shutdown of an unknown name") { try backend.shutdown(ghost) }
        expectError(.notFound, "shutdown(wait) of an unknown name") { try backend.shutdown(ghost, wait: true) }
        expectError(.notFound, "kill of an unknown name") { try backend.kill(ghost) }
        expectError(.notFound, "undefine of an unknown name") { try backend.undefine(ghost) }
        if has(ODY_VMM_CAP_PAUSE) {
            expectError(.notFound, "pause of an unknown name") { try backend.pause(ghost) }
            expectError(.notFound, "unpause of an unknown name") { try backend.unpause(ghost) }
        }
    }

    /// Names with XML/shell-special characters: either refused as invalid,
    /// or kept byte for byte (never interpreted, never another domain).
    func xmlSpecialNames() throws {
        let before = Set(try backend.list())
        let names = [prefix + "a<b>&'\"c", prefix + "x</name><vcpu>9", prefix + "&amp;$(id)"]
        for name in names {
            do throws(OdysseyError) {
                try backend.define(spec(name))
            } catch {
                XCTAssertEqual(error.code, .invalid, "special name \(name): refused with the wrong code: \(error)")
                continue
            }
            let listed = Set(try backend.list()).subtracting(before)
            XCTAssertEqual(listed, [name], "special name \(name) appeared as \(listed)")
            let info = try backend.info(name)
            XCTAssertEqual(info.name, name)
            XCTAssertEqual(info.state, .halted)
            if name.contains("vcpu") { XCTAssertNotEqual(info.vcpus, 9, "name content was interpreted as XML") }
            try backend.undefine(name)
        }
        XCTAssertEqual(Set(try backend.list()), before, "special names left something behind")
    }

    /// Enough domains that their names exceed the host's first list buffer
    /// (4096 bytes): the plugin must answer TOO_SMALL with `needed`, and the
    /// host retry must return every name.
    func listBeyondFirstBuffer() throws {
        let count = 4096 / (prefix.count + 10) + 10
        var defined: [String] = []
        defer { for n in defined { try? backend.undefine(n) } }
        for i in 0..<count {
            let n = prefix + "many-\(String(repeating: "x", count: 9 - String(i).count))\(i)"
            try backend.define(spec(n))
            defined.append(n)
        }
        let bytes = defined.reduce(0) { $0 + $1.utf8.count + 1 }
        XCTAssertGreaterThan(bytes, 4096, "test does not exceed the first buffer")
        let listed = Set(try backend.list())
        XCTAssertTrue(Set(defined).isSubset(of: listed), "list lost \(Set(defined).subtracting(listed).count) names past the first buffer")
    }
}
