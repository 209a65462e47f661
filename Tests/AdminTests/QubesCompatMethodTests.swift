// The methods and answers Qubes' own admin tools need (issue 14, parts 3-6),
// checked at the wire: volume clone tokens, notes, firewall, devices,
// CreateInPool, unimplemented methods, properties, tag idempotence.
// QubesClientTests runs the real client against the same answers.
import Foundation
import XCTest
@testable import Host

final class QubesCompatMethodTests: XCTestCase {
    func testVolumeCloneTokens() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        h.create("copy", template: "tpl")
        let image = { (d: String) in h.dir + "/state/domains/\(d)/private.img" }
        XCTAssertNotEqual(FileManager.default.contents(atPath: image("work")), FileManager.default.contents(atPath: image("copy")),
                          "two fresh images differ (file system UUIDs)")
        let token = h.ok("admin.vm.volume.CloneFrom", "private", dest: "work")
        XCTAssertEqual(token.count, 32)
        XCTAssertTrue(token.allSatisfy { $0.isLetter || $0.isNumber }, token)
        h.ok("admin.vm.volume.CloneTo", "private", dest: "copy", payload: token)
        XCTAssertEqual(FileManager.default.contents(atPath: image("work")), FileManager.default.contents(atPath: image("copy")),
                       "the destination's private volume is now a copy of the source's")
        // A token is good once; an unknown one is qubesd's error.
        var e = h.fails("admin.vm.volume.CloneTo", "private", dest: "copy", payload: token)
        XCTAssertEqual(e, AdminError("QubesVolumeCopyTokenNotFoundError", "Token to clone volume of qube was not found"))
        e = h.fails("admin.vm.volume.CloneTo", "private", dest: "copy", payload: "nope")
        XCTAssertEqual(e.type, "QubesVolumeCopyTokenNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.volume.CloneTo", "private", dest: "copy", payload: "\u{e9}").type, "ProtocolError")
        // Only volumes that outlive a stop are cloned; an AppVM's root is its template's.
        XCTAssertEqual(h.fails("admin.vm.volume.CloneFrom", "root", dest: "work").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.volume.CloneFrom", "volatile", dest: "work").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.volume.CloneFrom", "swap", dest: "work").type, "QubesValueError")
        // The token dies with its source (a new domain of that name does not inherit it).
        let stale = h.ok("admin.vm.volume.CloneFrom", "private", dest: "work")
        h.ok("admin.vm.Remove", dest: "work")
        h.create("work", template: "tpl")
        e = h.fails("admin.vm.volume.CloneTo", "private", dest: "copy", payload: stale)
        XCTAssertEqual(e.type, "QubesVolumeNotFoundError")
        // A template's root: copied tree, the destination's root image marked out of date.
        try "marker".write(toFile: h.dir + "/state/domains/tpl/root/marker", atomically: true, encoding: .utf8)
        h.create("alone", klass: "StandaloneVM")
        h.ok("admin.vm.volume.CloneTo", "root", dest: "alone", payload: h.ok("admin.vm.volume.CloneFrom", "root", dest: "tpl"))
        XCTAssertEqual(try String(contentsOfFile: h.dir + "/state/domains/alone/root/marker", encoding: .utf8), "marker")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.dir + "/state/domains/alone/.root.clone"))
        // Volumes must match: a private token does not fill a root.
        e = h.fails("admin.vm.volume.CloneTo", "root", dest: "alone", payload: h.ok("admin.vm.volume.CloneFrom", "private", dest: "tpl"))
        XCTAssertEqual(e.type, "QubesValueError")
    }

    func testTokensAreBounded() throws {
        let tokens = VolumeCloneTokens()
        let first = tokens.issue(.init(domain: "a", uuid: .adminVM, volume: "private"))
        for _ in 0..<VolumeCloneTokens.limit { _ = tokens.issue(.init(domain: "a", uuid: .adminVM, volume: "private")) }
        XCTAssertNil(tokens.redeem(first), "the oldest token is forgotten beyond the limit")
    }

    func testNotes() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work"), "")
        h.ok("admin.vm.notes.Set", dest: "work", payload: "line 1\n\tline 2 \u{e9}\n")
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work"), "line 1\n\tline 2 \u{e9}\n")
        // What is not safe to display becomes _ (bidi override, bell, escape).
        h.ok("admin.vm.notes.Set", dest: "work", payload: "a\u{202e}b\u{07}c\u{1b}[31m")
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work"), "a_b_c_[31m")
        h.ok("admin.vm.notes.Set", dest: "work")
        XCTAssertEqual(h.ok("admin.vm.notes.Get", dest: "work"), "")
        let r = h.methods.handle(AdminRequest(method: "admin.vm.notes.Set", dest: "work", payload: [0x61, 0xff]), callerSource: "dom0")
        XCTAssertEqual(r, .failure(AdminError("QubesNotesError", "Unable to sanitise qube notes: they are not UTF-8")))
        XCTAssertEqual(h.fails("admin.vm.notes.Get", dest: "nope").type, "QubesVMNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.notes.Get", dest: "dom0").type, "ProtocolError")   // qubesd: not for the AdminVM
    }

    func testFirewallStoredValidatedAndAnsweredAsQubesd() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work"), "action=accept\n", "Qubes' default")
        h.ok("admin.vm.firewall.Set", dest: "work", payload: """
            action=accept proto=tcp dstports=443 dsthost=example.com comment=web only
            action=drop dst4=10.0.0.0/8
            action=accept dst6=fe80::1 proto=icmp icmptype=8
            action=accept specialtarget=dns
            action=drop expire=1
            action=drop dstname=192.168.1.1

            """)
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work"), """
            action=accept dsthost=example.com proto=tcp dstports=443-443 comment=web only
            action=drop dst4=10.0.0.0/8
            action=accept dst6=fe80::1/128 proto=icmp icmptype=8
            action=accept specialtarget=dns
            action=drop dst4=192.168.1.1/32

            """, "qubesd's order and forms; the expired rule is not answered")
        h.ok("admin.vm.firewall.Reload", dest: "work")
        for bad in ["proto=tcp", "action=allow", "action=accept dstports=80", "action=accept proto=udp icmptype=1",
                    "action=accept dst4=1.2.3.4/33", "action=accept dst4=1.2.3/24", "action=accept dsthost=Bad.Host",
                    "action=accept dst4=1.2.3.4 dsthost=x.org", "action=accept action=drop", "action=accept  proto=tcp",
                    "action=accept proto=tcp dstports=90-80", "action=accept proto=tcp dstports=70000", "action=accept colour=red",
                    "action=accept comment=no;quote'", "action=accept proto=tcp dstports=+80", ""] {
            let e = h.fails("admin.vm.firewall.Set", dest: "work", payload: bad + "\n")
            XCTAssertEqual(e.type, "QubesValueError", bad)
            XCTAssertTrue(e.message.hasPrefix("Invalid firewall rule on line 1: "), e.message)
        }
        XCTAssertEqual(h.fails("admin.vm.firewall.Set", dest: "work", payload: "action=accept comment=\u{e9}").type, "ProtocolError")
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work").split(separator: "\n").count, 5, "a refused set changes nothing")
        h.ok("admin.vm.firewall.Set", dest: "work")
        XCTAssertEqual(h.ok("admin.vm.firewall.Get", dest: "work"), "", "no rules at all: an empty answer (qvm-firewall reset sets one accept)")
    }

    func testFirewallEventsAfterSetAndReload() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        let s = Subscriber(h)
        h.ok("admin.vm.firewall.Set", dest: "work", payload: "action=drop\n")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "firewall-changed", args: []))
        XCTAssertTrue(s.hangUp())
    }

    func testDevicesPoolsAndUnimplementedMethods() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.deviceclass.List"), "block\nmic\npci\nusb\n")
        for c in ["block", "mic", "pci", "usb"] {
            for m in ["Available", "Assigned", "Attached"] { XCTAssertEqual(h.ok("admin.vm.device.\(c).\(m)", dest: "work"), "") }
            XCTAssertEqual(h.fails("admin.vm.device.\(c).Attach", "sys-usb+2-1", dest: "work").type, "DeviceNotFound")
            XCTAssertEqual(h.fails("admin.vm.device.\(c).Detach", "sys-usb+2-1", dest: "work").type, "DeviceNotAssigned")
        }
        XCTAssertEqual(h.ok("admin.vm.device.denied.List", dest: "work"), "")
        // CreateInPool: the one pool, for all volumes or one.
        h.ok("admin.vm.CreateInPool.AppVM", "tpl", payload: "name=p1 label=red pool=default")
        h.ok("admin.vm.CreateInPool.AppVM", "tpl", payload: "name=p2 label=red pool:private=default")
        XCTAssertEqual(h.ok("admin.vm.List", dest: "p2").split(separator: " ").first, "p2")
        var e = h.fails("admin.vm.CreateInPool.AppVM", "tpl", payload: "name=p3 label=red pool=lvm")
        XCTAssertEqual(e.type, "StoragePoolException")
        XCTAssertEqual(h.fails("admin.vm.CreateInPool.AppVM", "tpl", payload: "name=p3 label=red pool:swap=default").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.CreateInPool.AppVM", "tpl", payload: "name=p3 label=red").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.vm.List", dest: "p3").type, "QubesVMNotFoundError", "nothing half made")
        // What Odyssey does not implement is a QubesException subclass, never ProtocolError.
        for m in ["admin.vm.Console", "admin.backup.Execute", "admin.vm.volume.Import", "admin.pool.Add"] {
            e = h.fails(m, dest: "dom0")
            XCTAssertEqual(e.type, "QubesNotImplementedError", m)
        }
    }

    func testTagSetIsIdempotentAndAutomaticTagsRefusedAsValueErrors() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        let s = Subscriber(h)
        h.ok("admin.vm.tag.Set", "isolation-native", dest: "work")     // present: a no-op, as qubesd
        h.ok("admin.vm.tag.Set", "mine", dest: "work")
        h.ok("admin.vm.tag.Set", "mine", dest: "work")
        XCTAssertEqual(s.next(), .init(subject: "work", name: "domain-tag-add:mine", args: ["tag", "mine"]))
        XCTAssertNil(s.reader.next(timeoutMs: 300), "a tag already there is not added again")
        XCTAssertTrue(s.hangUp())
        let e = h.fails("admin.vm.tag.Set", "isolation-xen", dest: "work")
        XCTAssertEqual(e, AdminError("QubesValueError", "tag 'isolation-xen' is maintained from the vmm property and cannot be changed by hand"))
    }

    func testPropertiesAsQubesdHasThem() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "name", dest: "work"), "default=False type=str work")
        XCTAssertTrue(h.ok("admin.vm.property.Get", "qid", dest: "work").hasPrefix("default=False type=int "))
        XCTAssertTrue(h.ok("admin.vm.property.Get", "uuid", dest: "work").hasPrefix("default=False type=str "))
        XCTAssertEqual(h.ok("admin.vm.property.Get", "xid", dest: "work"), "default=True type=int -1")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "start_time", dest: "work"), "default=True type=str ")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "xid", dest: "work", payload: "3").type, "QubesPropertyAccessError")
        // keyboard_layout: the GUI domain's (dom0's us++), validated as qubesd does.
        XCTAssertEqual(h.ok("admin.vm.property.Get", "keyboard_layout", dest: "work"), "default=True type=str us++")
        h.ok("admin.vm.property.Set", "keyboard_layout", dest: "dom0", payload: "de+nodeadkeys+grp:alt_shift_toggle")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "keyboard_layout", dest: "work"), "default=True type=str de+nodeadkeys+grp:alt_shift_toggle")
        for bad in ["us", "u1++", "us+a b+", "us++x;y", "++"] {
            XCTAssertEqual(h.fails("admin.vm.property.Set", "keyboard_layout", dest: "work", payload: bad).type, "QubesPropertyValueError", bad)
        }
        // management_dispvm: the template's, else the global one; a disposable template or None.
        h.create("mgmt-dvm", template: "tpl")
        h.ok("admin.vm.property.Set", "template_for_dispvms", dest: "mgmt-dvm", payload: "True")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "management_dispvm", dest: "work"), "default=True type=vm ")
        h.ok("admin.property.Set", "management_dispvm", payload: "mgmt-dvm")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "management_dispvm", dest: "work"), "default=True type=vm mgmt-dvm")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "management_dispvm", dest: "work", payload: "tpl").type, "QubesPropertyValueError")
        // Globals.
        XCTAssertEqual(h.ok("admin.property.Get", "check_updates_vm"), "default=True type=bool True")
        XCTAssertEqual(h.ok("admin.property.Get", "default_pool"), "default=True type=str default")
        XCTAssertEqual(h.ok("admin.property.Get", "default_pool_private"), "default=True type=str default")
        XCTAssertEqual(h.fails("admin.property.Set", "default_pool_root", payload: "lvm").type, "QubesPropertyValueError")
        let list = h.ok("admin.vm.property.List", dest: "work")
        for p in ["keyboard_layout", "management_dispvm", "start_time", "xid"] { XCTAssertTrue(list.contains("\(p)\n"), p) }
    }
}
