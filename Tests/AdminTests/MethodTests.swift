// Every method's round trip as dom0, with qubesd's output formats.
import Foundation
import XCTest
@testable import Host

final class MethodTests: XCTestCase {
    func testClassesListCreateRemove() throws {
        let h = try AdminHarness()
        XCTAssertEqual(h.ok("admin.vmclass.List"), "AdminVM\nAppVM\nDispVM\nStandaloneVM\nTemplateVM\n")
        h.create("tpl", klass: "TemplateVM", label: "black")
        h.create("work", template: "tpl", label: "blue")
        h.create("alone", klass: "StandaloneVM", label: "green")
        let list = h.ok("admin.vm.List").split(separator: "\n")
        XCTAssertEqual(list.map { String($0.split(separator: " ")[0]) }, ["alone", "dom0", "tpl", "work"])
        let work = list.first { $0.hasPrefix("work ") }!
        XCTAssertTrue(work.hasPrefix("work class=AppVM state=Halted uuid="), String(work))
        XCTAssertEqual(h.ok("admin.vm.List", dest: "work"), String(work) + "\n")
        XCTAssertEqual(h.fails("admin.vm.List", dest: "nope").type, "QubesVMNotFoundError")
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.dir + "/state/domains/work"), "volumes created")

        // Bad creations: each with its Qubes type.
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=work label=red").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "nope", payload: "name=x label=red").type, "QubesVMNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=x label=pink").type, "QubesLabelNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=1x label=red").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=x").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=x label=red color=1").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.vm.Create.TemplateVM", "tpl", payload: "name=x label=red").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.Create.AdminVM", payload: "name=x label=red").type, "QubesNotImplementedError")
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", dest: "work", payload: "name=x label=red").type, "ProtocolError")

        XCTAssertEqual(h.fails("admin.vm.Remove", dest: "tpl").type, "QubesVMInUseError")
        XCTAssertEqual(h.fails("admin.vm.Remove").type, "QubesVMInUseError")
        h.ok("admin.vm.Remove", dest: "work")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.dir + "/state/domains/work"), "volumes removed")
        XCTAssertEqual(h.fails("admin.vm.Remove", dest: "work").type, "QubesVMNotFoundError")
    }

    func testDisposable() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("dvm", template: "tpl")
        XCTAssertEqual(h.fails("admin.vm.CreateDisposable", dest: "dvm").type, "QubesPropertyValueError")   // not a disposable template
        h.ok("admin.vm.property.Set", "template_for_dispvms", dest: "dvm", payload: "True")
        let name = h.ok("admin.vm.CreateDisposable", dest: "dvm")
        XCTAssertTrue(name.hasPrefix("disp"), name)
        XCTAssertEqual(h.ok("admin.vm.property.Get", "template", dest: name), "default=False type=vm dvm")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "auto_cleanup", dest: name), "default=False type=bool True")
        let uuid = h.ok("admin.vm.CreateDisposable", dest: "dvm", payload: "uuid")
        XCTAssertTrue(uuid.hasPrefix("uuid:") && uuid.count == 41, uuid)
        XCTAssertEqual(h.fails("admin.vm.CreateDisposable", dest: "dvm", payload: "x").type, "QubesValueError")
        // dest dom0: the caller's default_dispvm (dom0 has none here).
        XCTAssertEqual(h.fails("admin.vm.CreateDisposable").type, "QubesException")
        h.ok("admin.property.Set", "default_dispvm", payload: "dvm")
        XCTAssertTrue(h.ok("admin.vm.CreateDisposable").hasPrefix("disp"))
    }

    func testProperties() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM", label: "black")
        h.create("work", template: "tpl", label: "blue")
        XCTAssertTrue(h.ok("admin.vm.property.List", dest: "work").split(separator: "\n").contains("memory"))
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work"), "default=True type=int 400")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "label", dest: "work"), "default=False type=label blue")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "template", dest: "work"), "default=False type=vm tpl")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "autostart", dest: "work"), "default=True type=bool False")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "netvm", dest: "work"), "default=True type=vm ")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "default_user", dest: "work"), "default=True type=str user")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "vmm", dest: "work"), "default=True type=str native")

        // Inheritance from the template, set, reset.
        h.ok("admin.vm.property.Set", "memory", dest: "tpl", payload: "1000")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work"), "default=True type=int 1000")
        XCTAssertEqual(h.ok("admin.vm.property.GetDefault", "memory", dest: "work"), "type=int 1000")
        h.ok("admin.vm.property.Set", "memory", dest: "work", payload: "600")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work"), "default=False type=int 600")
        h.ok("admin.vm.property.Reset", "memory", dest: "work")
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work"), "default=True type=int 1000")
        XCTAssertEqual(h.ok("admin.vm.property.GetDefault", "label", dest: "work"), "", "no default: empty reply")
        h.ok("admin.vm.property.Set", "kernelopts", dest: "work", payload: "a\\b")
        let all = h.ok("admin.vm.property.GetAll", dest: "work")
        XCTAssertTrue(all.contains("memory default=True type=int 1000\n"), all)
        XCTAssertTrue(all.contains("kernelopts default=False type=str a\\\\b\n"), all)
        XCTAssertFalse(h.ok("admin.vm.property.Help", "memory", dest: "work").isEmpty)

        // Errors, each with its Qubes type.
        XCTAssertEqual(h.fails("admin.vm.property.Get", "nope", dest: "work").type, "QubesNoSuchPropertyError")
        XCTAssertEqual(h.fails("admin.vm.property.Get", "memory", dest: "nope").type, "QubesVMNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "memory", dest: "work", payload: "lots").type, "QubesPropertyValueError")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "label", dest: "work", payload: "pink").type, "QubesLabelNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "uuid", dest: "work", payload: "x").type, "QubesPropertyAccessError")
        XCTAssertEqual(h.fails("admin.vm.property.Reset", "label", dest: "work").type, "QubesPropertyAccessError")
        XCTAssertEqual(h.fails("admin.vm.property.Set", "template", dest: "tpl", payload: "tpl").type, "QubesNoSuchPropertyError")

        // Global properties.
        XCTAssertTrue(h.ok("admin.property.List").contains("default_template\n"))
        XCTAssertEqual(h.ok("admin.property.Get", "default_vmm"), "default=True type=str native")
        h.ok("admin.property.Set", "default_template", payload: "tpl")
        XCTAssertEqual(h.ok("admin.property.Get", "default_template"), "default=False type=vm tpl")
        XCTAssertEqual(h.ok("admin.property.GetDefault", "default_template"), "type=vm ")
        XCTAssertTrue(h.ok("admin.property.GetAll").contains("default_template default=False type=vm tpl\n"))
        h.ok("admin.property.Reset", "default_template")
        XCTAssertEqual(h.ok("admin.property.Get", "default_template"), "default=True type=vm ")
        XCTAssertFalse(h.ok("admin.property.Help", "default_netvm").isEmpty)
        XCTAssertEqual(h.fails("admin.property.Get", "nope").type, "QubesNoSuchPropertyError")
        XCTAssertEqual(h.fails("admin.property.Get", "default_vmm", dest: "work").type, "ProtocolError")
    }

    func testFeaturesAndTags() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.feature.List", dest: "work"), "")
        h.ok("admin.vm.feature.Set", "service.cups", dest: "tpl", payload: "1")
        h.ok("admin.vm.feature.Set", "internal", dest: "work", payload: "")
        XCTAssertEqual(h.ok("admin.vm.feature.List", dest: "work"), "internal\n")
        XCTAssertEqual(h.ok("admin.vm.feature.Get", "internal", dest: "work"), "")
        XCTAssertEqual(h.fails("admin.vm.feature.Get", "service.cups", dest: "work").type, "QubesFeatureNotFoundError")
        XCTAssertEqual(h.ok("admin.vm.feature.CheckWithTemplate", "service.cups", dest: "work"), "1")
        h.ok("admin.vm.feature.Set", "gui", dest: "dom0", payload: "1")
        XCTAssertEqual(h.ok("admin.vm.feature.CheckWithAdminVM", "gui", dest: "work"), "1")
        XCTAssertEqual(h.ok("admin.vm.feature.CheckWithTemplateAndAdminVM", "service.cups", dest: "work"), "1")
        XCTAssertEqual(h.fails("admin.vm.feature.CheckWithAdminVM", "service.cups", dest: "work").type, "QubesFeatureNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.feature.CheckWithNetvm", "gui", dest: "work").type, "QubesFeatureNotFoundError")
        h.ok("admin.vm.feature.Remove", "internal", dest: "work")
        XCTAssertEqual(h.fails("admin.vm.feature.Remove", "internal", dest: "work").type, "QubesFeatureNotFoundError")

        XCTAssertEqual(h.ok("admin.vm.tag.List", dest: "work"), "isolation-native\n")
        h.ok("admin.vm.tag.Set", "managed", dest: "work")
        XCTAssertEqual(h.ok("admin.vm.tag.List", dest: "work"), "isolation-native\nmanaged\n")
        XCTAssertEqual(h.ok("admin.vm.tag.Get", "managed", dest: "work"), "1")
        XCTAssertEqual(h.ok("admin.vm.tag.Get", "other", dest: "work"), "0")
        XCTAssertEqual(h.fails("admin.vm.tag.Get", "bad tag!", dest: "work").type, "QubesValueError")
        h.ok("admin.vm.tag.Remove", "managed", dest: "work")
        XCTAssertEqual(h.fails("admin.vm.tag.Remove", "managed", dest: "work").type, "QubesTagNotFoundError")
        // Automatic tags: a QubesException the tools report (not PermissionDenied); present ones are a no-op.
        XCTAssertEqual(h.fails("admin.vm.tag.Set", "isolation-xen", dest: "work").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.vm.tag.Remove", "isolation-native", dest: "work").type, "QubesValueError")
        h.ok("admin.vm.tag.Set", "isolation-native", dest: "work")
    }

    func testLifecycleStateErrors() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.CurrentState", dest: "work"), "mem=0 mem_static_max=0 cputime=0 power_state=Halted")
        var e = h.fails("admin.vm.Shutdown", dest: "work")
        // qubesd's wording, which users and scripts know.
        XCTAssertEqual(e.type, "QubesVMNotStartedError"); XCTAssertEqual(e.message, "Domain is powered off: 'work'")
        XCTAssertEqual(h.fails("admin.vm.Kill", dest: "work").message, "Domain is powered off: 'work'")
        e = h.fails("admin.vm.Pause", dest: "work")
        XCTAssertEqual(e.type, "QubesVMNotRunningError"); XCTAssertEqual(e.message, "Domain not running (either powered off or paused): 'work'")
        XCTAssertEqual(h.fails("admin.vm.Unpause", dest: "work").type, "QubesVMNotPausedError")
        XCTAssertEqual(h.fails("admin.vm.Shutdown", "now", dest: "work").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.vm.Start", dest: "nope").type, "QubesVMNotFoundError")
        XCTAssertEqual(h.fails("admin.vm.Start").type, "QubesVMError")
        // No vmm plugin is loaded here: the start fails with the reason, and the domain stays halted.
        e = h.fails("admin.vm.Start", dest: "work")
        XCTAssertEqual(e.type, "QubesException")
        XCTAssertTrue(e.message.hasPrefix("Start failed: ") && e.message.contains("native"), e.message)
        XCTAssertTrue(h.ok("admin.vm.List", dest: "work").contains("state=Halted"))
    }

    func testVolumesPoolsLabels() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        XCTAssertEqual(h.ok("admin.vm.volume.List", dest: "work"), "private\nroot\nvolatile\n")
        let info = h.ok("admin.vm.volume.Info", "private", dest: "work")
        XCTAssertTrue(info.hasPrefix("pool=default\nvid=work/private\n"), info)
        XCTAssertTrue(info.contains("save_on_stop=True\n") && info.contains("revisions_to_keep=1\n"), info)
        XCTAssertTrue(h.ok("admin.vm.volume.Info", "root", dest: "work").contains("source=tpl:root"))
        XCTAssertEqual(h.ok("admin.vm.volume.ListSnapshots", "private", dest: "work"), "")
        XCTAssertEqual(h.fails("admin.vm.volume.Info", "swap", dest: "work").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.vm.volume.Revert", "private", dest: "work", payload: "r1").type, "ProtocolError")
        h.ok("admin.vm.volume.Set.revisions_to_keep", "private", dest: "work", payload: "3")
        XCTAssertTrue(h.ok("admin.vm.volume.Info", "private", dest: "work").contains("revisions_to_keep=3\n"))
        XCTAssertEqual(h.fails("admin.vm.volume.Set.revisions_to_keep", "private", dest: "work", payload: "03").type, "ProtocolError")
        // Volumes have a size now (issue 11, finding 5): Resize grows, never shrinks (as qubesd).
        XCTAssertTrue(h.ok("admin.vm.volume.Info", "private", dest: "work").contains("size=2147483648\n"))
        XCTAssertEqual(h.fails("admin.vm.volume.Resize", "private", dest: "work", payload: "1000").type, "StoragePoolException")
        XCTAssertEqual(h.fails("admin.vm.volume.Resize", "private", dest: "work", payload: "4G").type, "ProtocolError")
        h.ok("admin.vm.volume.Resize", "private", dest: "work", payload: "3221225472")
        XCTAssertTrue(h.ok("admin.vm.volume.Info", "private", dest: "work").contains("size=3221225472\n"))
        XCTAssertEqual(h.ok("admin.pool.ListDrivers"), "odyssey-dir dir_path revisions_to_keep\n")
        XCTAssertEqual(h.ok("admin.pool.List"), "default\n")
        XCTAssertTrue(h.ok("admin.pool.Info", "default").contains("driver=odyssey-dir\n"))
        XCTAssertEqual(h.fails("admin.pool.Info", "lvm").type, "ProtocolError")

        XCTAssertEqual(h.ok("admin.label.List"), "red\norange\nyellow\ngreen\ngray\nblue\npurple\nblack\n")
        XCTAssertEqual(h.ok("admin.label.Get", "blue"), "0x3465a4")
        XCTAssertEqual(h.ok("admin.label.Index", "black"), "8")
        XCTAssertEqual(h.fails("admin.label.Get", "pink").type, "QubesValueError")
        h.ok("admin.label.Create", "pink", payload: "0xff88cc")
        XCTAssertEqual(h.ok("admin.label.Index", "pink"), "9")
        XCTAssertEqual(h.fails("admin.label.Create", "pink", payload: "0xff88cc").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.label.Create", "12", payload: "0xff88cc").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.label.Create", "teal", payload: "teal").type, "QubesValueError")
        h.ok("admin.vm.property.Set", "label", dest: "work", payload: "pink")
        XCTAssertEqual(h.fails("admin.label.Remove", "pink").type, "QubesException")
        h.ok("admin.vm.property.Set", "label", dest: "work", payload: "red")
        h.ok("admin.label.Remove", "pink")
        XCTAssertEqual(h.fails("admin.label.Remove", "red").type, "QubesException")
    }

    func testTemplateFromRootfs() throws {
        let h = try AdminHarness()
        let rootfs = h.dir + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
        try "hello\n".write(toFile: rootfs + "/etc/motd", atomically: true, encoding: .utf8)
        let out = h.ok("admin.odyssey.template.Create", "from-rootfs", payload: "name=mini label=gray source=\(rootfs)")
        XCTAssertTrue(out.contains("seconds="), out)
        XCTAssertTrue(h.ok("admin.vm.List", dest: "mini").hasPrefix("mini class=TemplateVM "))
        XCTAssertEqual(h.fails("admin.odyssey.template.Create", "from-rootfs", payload: "name=m2 label=gray").type, "QubesValueError")
        XCTAssertEqual(h.fails("admin.odyssey.template.Create", "from-cloud", payload: "name=m2").type, "ProtocolError")
        XCTAssertEqual(h.fails("admin.odyssey.template.Create", "from-rootfs", payload: "name=m3 source=/nonexistent").type, "StoragePoolException")
    }
}
