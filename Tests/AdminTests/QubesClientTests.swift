// Qubes' own admin tools, unmodified, against the admin socket (issue 14,
// parts 3-6): qvm-clone, qvm-notes, qvm-firewall, qvm-device, qvm-create -P,
// qvm-prefs/qubes-prefs for the properties the tools read, errors the tools
// report (never a traceback), and events through the client's own
// EventsDispatcher. Skipped, with the reason, where the client cannot be had.
import Foundation
import XCTest
@testable import Host

final class QubesClientTests: XCTestCase {
    private func ok(_ r: QubesClient.Run, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, "\(what): \(r.err)", file: file, line: line)
        XCTAssertFalse(r.err.contains("Traceback"), "\(what): \(r.err)", file: file, line: line)
    }

    /// A refusal the tool reports as an error line: status 1 or 2, the message, no traceback.
    private func refused(_ r: QubesClient.Run, _ message: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, what, file: file, line: line)
        XCTAssertTrue(r.err.contains(message), "\(what): \(r.err)", file: file, line: line)
        XCTAssertFalse(r.err.contains("Traceback"), "\(what): \(r.err)", file: file, line: line)
    }

    private func makeSource(_ c: QubesClient) throws {
        ok(try c.run("qvm_create", "-C", "TemplateVM", "-l", "black", "tpl"), "qvm-create tpl")
        ok(try c.run("qvm_create", "-t", "tpl", "-l", "blue", "work"), "qvm-create work")
        ok(try c.run("qvm_tags", "work", "add", "mine"), "qvm-tags add")
        ok(try c.run("qvm_features", "work", "foo", "bar"), "qvm-features")
        ok(try c.run("qvm_prefs", "work", "memory", "500"), "qvm-prefs set")
        ok(try c.run("qvm_notes", "work", "--set", "hello notes"), "qvm-notes --set")
        ok(try c.run("qvm_firewall", "work", "add", "--before", "0", "drop", "dsthost=10.0.0.0/8"), "qvm-firewall add")
    }

    func testQvmCloneCopiesEverythingAndLeavesNothingHalfMade() throws {
        let c = try QubesClient()
        let h = c.harness
        try makeSource(c)
        ok(try c.run("qvm_clone", "work", "work2"), "qvm-clone")
        // Tags (isolation-native among them: adding a present tag is a no-op), features,
        // properties, notes, firewall and the private volume all came across.
        XCTAssertEqual(h.ok("admin.vm.tag.List", dest: "work2"), "isolation-native\nmine\n")
        XCTAssertEqual(h.ok("admin.vm.feature.Get", "foo", dest: "work2"), "bar")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work2"), "default=False type=int 500")
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work2"), "hello notes")
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work2"), h.ok("admin.vm.firewall.Get", dest: "work"))
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work2"), "action=drop dst4=10.0.0.0/8\naction=accept\n")
        let image = { (d: String) in FileManager.default.contents(atPath: h.dir + "/state/domains/\(d)/private.img") }
        XCTAssertNotNil(image("work2"))
        XCTAssertEqual(image("work2"), image("work"), "CloneFrom/CloneTo copied the private volume")

        // A clone that fails part way (here the menu tool) is removed by the client: nothing half made.
        c.setAppMenus(exitStatus: 1)
        refused(try c.run("qvm_clone", "work", "work3"), "Failed to clone appmenus", "qvm-clone, menus failing")
        XCTAssertEqual(h.fails("admin.vm.List", dest: "work3").type, "QubesVMNotFoundError")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.dir + "/state/domains/work3"))
    }

    func testNotesFirewallDevicesPoolsAndRefusals() throws {
        let c = try QubesClient()
        try makeSource(c)
        var r = try c.run("qvm_notes", "work", "--print")
        ok(r, "qvm-notes --print"); XCTAssertEqual(r.out, "hello notes\n")
        r = try c.run("qvm_firewall", "work", "--raw", "list")
        ok(r, "qvm-firewall --raw list"); XCTAssertEqual(r.out, "action=drop dst4=10.0.0.0/8\naction=accept\n")
        ok(try c.run("qvm_firewall", "work", "reset"), "qvm-firewall reset")
        XCTAssertEqual(c.harness.ok("admin.vm.firewall.Get", dest: "work"), "action=accept\n")
        // Devices: Qubes' classes, nothing in them.
        r = try c.run("qvm_device", "pci", "list")
        ok(r, "qvm-device pci list"); XCTAssertEqual(r.out, "")
        r = try c.run("qvm_device", "usb", "list", "work")
        ok(r, "qvm-device usb list work"); XCTAssertEqual(r.out, "")
        r = try c.run("qvm_device", "--list-device-classes")
        ok(r, "qvm-device --list-device-classes"); XCTAssertEqual(r.out, "block\nmic\npci\nusb\n")
        // Pools.
        ok(try c.run("qvm_create", "-P", "default", "-t", "tpl", "-l", "red", "pooled"), "qvm-create -P default")
        refused(try c.run("qvm_create", "-P", "lvm", "-t", "tpl", "-l", "red", "pooled2"), "No such pool: 'lvm'", "qvm-create -P lvm")
        r = try c.run("qvm_pool")
        ok(r, "qvm-pool"); XCTAssertTrue(r.out.contains("default  odyssey-dir"), r.out)
        // Automatic tags: refused with a message, not PermissionDenied's traceback.
        refused(try c.run("qvm_tags", "work", "add", "isolation-xen"), "maintained from the vmm property", "qvm-tags add isolation-xen")
        ok(try c.run("qvm_tags", "work", "add", "isolation-native"), "qvm-tags add a present automatic tag")
        // A stopped domain: qubesd's wording.
        refused(try c.run("qvm_pause", "work"), "Domain not running (either powered off or paused): 'work'", "qvm-pause halted")
    }

    func testPropertiesTheToolsRead() throws {
        let c = try QubesClient()
        try makeSource(c)
        // qvm-prefs prints an empty str as an empty line, a vm property's None as nothing.
        let expected = [("xid", "-1\n"), ("start_time", "\n"), ("keyboard_layout", "us++\n"), ("management_dispvm", ""), ("name", "work\n")]
        for (p, v) in expected {
            let r = try c.run("qvm_prefs", "work", p)
            ok(r, "qvm-prefs work \(p)"); XCTAssertEqual(r.out, v, p)
        }
        for (p, v) in [("default_pool", "default"), ("default_pool_private", "default"), ("check_updates_vm", "True")] {
            let r = try c.run("qubes_prefs", p)
            ok(r, "qubes-prefs \(p)"); XCTAssertEqual(r.out, v + "\n", p)
        }
        // qvm-prefs lists name/qid/uuid as set (`-`), as with qubesd.
        let list = try c.run("qvm_prefs", "work")
        ok(list, "qvm-prefs work")
        let nameLine = list.out.split(separator: "\n").first { $0.hasPrefix("name ") }.map(String.init) ?? ""
        XCTAssertTrue(nameLine.contains(" -  ") || nameLine.contains(" - "), nameLine)
        XCTAssertFalse(nameLine.contains(" D "), nameLine)
    }

    func testEventsThroughTheClientsDispatcher() throws {
        let c = try QubesClient()
        try makeSource(c)
        let argv = c.command("events", [])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        var text = ""
        func readUntil(_ needle: String) {
            while !text.contains(needle) {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { return }
                text += String(decoding: d, as: UTF8.self)
            }
        }
        readUntil("listening\n")
        // The subscription is up once the client has printed; a set now is seen.
        for _ in 0..<200 where c.harness.methods.hub.subscriberCount == 0 { usleep(50_000) }
        c.harness.ok("admin.vm.feature.Set", "ev", dest: "work", payload: "1")
        c.harness.ok("admin.vm.feature.Remove", "ev", dest: "work")
        c.harness.ok("admin.vm.property.Set", "memory", dest: "work", payload: "600")
        readUntil("property-set:memory")
        let lines = text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("work ") }
        XCTAssertEqual(lines, [
            "work domain-feature-pre-set:ev feature=ev value=1",
            "work domain-feature-set:ev feature=ev value=1",
            "work domain-feature-pre-delete:ev feature=ev",
            "work domain-feature-delete:ev feature=ev",
            "work property-pre-set:memory name=memory newvalue=600 oldvalue=500",
            "work property-set:memory name=memory newvalue=600 oldvalue=500",
        ], text)
    }
}
