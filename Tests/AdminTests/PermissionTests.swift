// Domains other than dom0: the policy decides, before anything else.
import Foundation
import XCTest
@testable import Host

final class PermissionTests: XCTestCase {
    /// A plausible argument and payload per method, so only the permission can fail first.
    func sample(_ method: String) -> (arg: String, payload: String) {
        switch method {
        case let m where m.hasPrefix("admin.vm.Create."): return ("", "name=newvm label=red")
        case let m where m.contains("property."): return (m.hasSuffix(".List") || m.hasSuffix(".GetAll") ? "" : "memory", m.hasSuffix(".Set") ? "800" : "")
        case let m where m.contains("feature."): return (m.hasSuffix(".List") ? "" : "service.x", m.hasSuffix(".Set") ? "1" : "")
        case let m where m.contains("tag."): return (m.hasSuffix(".List") ? "" : "t1", "")
        case let m where m.contains("volume."):
            return (m.hasSuffix(".List") ? "" : "private", m.hasSuffix(".Revert") ? "r1" : m.hasSuffix(".revisions_to_keep") || m.hasSuffix(".Resize") ? "2" : "")
        case "admin.pool.Info": return ("default", "")
        case "admin.label.Create": return ("pink", "0xff00ff")
        case let m where m.hasPrefix("admin.label.") && !m.hasSuffix(".List"): return ("red", "")
        case "admin.odyssey.template.Create": return ("from-host", "name=t label=black")
        default: return ("", "")
        }
    }

    func testNoGrantsDeniesEveryMethodWithoutRevealingExistence() throws {
        let h = try AdminHarness()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        h.create("mgmt", template: "tpl")
        let names = h.methods.declaredMethods.map(\.name) + ["admin.vm.NoSuchMethod"]
        XCTAssertGreaterThan(names.count, 60)
        for name in names {
            let s = sample(name)
            for dest in ["work", "no-such-domain", "dom0", "mgmt"] {
                let e = h.fails(name, s.arg, dest: dest, payload: s.payload, as: "mgmt")
                XCTAssertEqual(e, AdminError("PermissionDenied", ""), "\(name) -> \(dest)")
            }
        }
        // Nothing changed, nothing was created.
        XCTAssertEqual(h.ok("admin.vm.List").split(separator: "\n").count, 4)
    }

    func testIncludeFileMappingMatchesPolicyFile() throws {
        let h = try AdminHarness()
        let text = try String(contentsOfFile: Repo.root + "/config/policy.d/20-admin.policy", encoding: .utf8)
        var routed: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("!include-service") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            routed[String(f[1])] = String(f[3]).replacingOccurrences(of: "include/", with: "")
        }
        for (name, include) in h.methods.declaredMethods {
            XCTAssertEqual(routed[name], include, "20-admin.policy routes \(name)")
        }
        XCTAssertEqual(routed.count, h.methods.declaredMethods.count)
        for f in ["admin-local-ro", "admin-local-rwx", "admin-global-ro", "admin-global-rwx"] {
            let body = try String(contentsOfFile: Repo.root + "/config/policy.d/include/" + f, encoding: .utf8)
            XCTAssertTrue(body.split(separator: "\n").allSatisfy { $0.hasPrefix("#") }, "\(f) ships empty")
        }
    }

    func testLocalRwxForManagedTag() throws {
        let rule = "mgmt @tag:managed allow,target=dom0"
        let h = try AdminHarness(grants: ["admin-local-rwx": rule, "admin-local-ro": rule,
                                          "admin-global-ro": "mgmt @adminvm allow,target=dom0\n" + rule])
        h.create("tpl", klass: "TemplateVM")
        for n in ["m1", "m2", "other", "mgmt"] { h.create(n, template: "tpl") }
        h.ok("admin.vm.tag.Set", "managed", dest: "m1")
        h.ok("admin.vm.tag.Set", "managed", dest: "m2")

        // Filtered list: only what the policy lets mgmt see (dom0 through @adminvm).
        let list = h.ok("admin.vm.List", as: "mgmt").split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        XCTAssertEqual(list, ["dom0", "m1", "m2"])
        XCTAssertEqual(h.fails("admin.vm.List", dest: "other", as: "mgmt"), .permissionDenied())

        for d in ["m1", "m2"] {
            h.ok("admin.vm.property.Set", "memory", dest: d, payload: "700", as: "mgmt")
            XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: d, as: "mgmt"), "default=False type=int 700")
            h.ok("admin.vm.feature.Set", "x", dest: d, payload: "1", as: "mgmt")
            // Errors after the permission check are the real ones.
            XCTAssertEqual(h.fails("admin.vm.property.Get", "nope", dest: d, as: "mgmt").type, "QubesNoSuchPropertyError")
            XCTAssertEqual(h.fails("admin.vm.Shutdown", dest: d, as: "mgmt").type, "QubesVMNotStartedError")
        }
        for d in ["other", "tpl", "no-such", "dom0"] {
            XCTAssertEqual(h.fails("admin.vm.property.Set", "memory", dest: d, payload: "700", as: "mgmt"), .permissionDenied(), d)
            XCTAssertEqual(h.fails("admin.vm.property.Get", "memory", dest: d, as: "mgmt"), .permissionDenied(), d)
        }
        // mgmt cannot spread the tag to a domain it does not manage, nor create or remove domains.
        XCTAssertEqual(h.fails("admin.vm.tag.Set", "managed", dest: "other", as: "mgmt"), .permissionDenied())
        XCTAssertEqual(h.fails("admin.vm.Create.AppVM", "tpl", payload: "name=x label=red", as: "mgmt"), .permissionDenied())
        XCTAssertEqual(h.fails("admin.vm.Remove", dest: "m1", as: "mgmt"), .permissionDenied())
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "other"), "default=True type=int 400")
    }

    func testCreationByADomainTagsItAndOnlyDom0ChangesTheTag() throws {
        let h = try AdminHarness(grants: ["admin-global-rwx": "mgmt @adminvm allow,target=dom0\nmgmt @tag:created-by-mgmt allow,target=dom0",
                                          "admin-local-rwx": "mgmt @tag:created-by-mgmt allow,target=dom0",
                                          "admin-local-ro": "mgmt @tag:created-by-mgmt allow,target=dom0"])
        h.create("tpl", klass: "TemplateVM")
        h.create("mgmt", template: "tpl")
        h.create("made", template: "tpl", as: "mgmt")
        XCTAssertEqual(h.ok("admin.vm.tag.List", dest: "made"), "created-by-mgmt\nisolation-native\n")
        XCTAssertEqual(h.ok("admin.vm.tag.List", dest: "made", as: "mgmt"), "created-by-mgmt\nisolation-native\n")
        let e = h.fails("admin.vm.tag.Remove", "created-by-mgmt", dest: "made", as: "mgmt")
        XCTAssertEqual(e.type, "PermissionDenied")
        XCTAssertFalse(e.message.isEmpty, "refused by rule, with the reason")
        XCTAssertEqual(h.fails("admin.vm.tag.Set", "created-by-other", dest: "made", as: "mgmt").type, "PermissionDenied")
        h.ok("admin.vm.property.Set", "memory", dest: "made", payload: "500", as: "mgmt")
        h.ok("admin.vm.Remove", dest: "made", as: "mgmt")
        // dom0 may change the tag.
        h.create("made2", template: "tpl", as: "mgmt")
        h.ok("admin.vm.tag.Remove", "created-by-mgmt", dest: "made2")
        XCTAssertEqual(h.fails("admin.vm.property.Get", "memory", dest: "made2", as: "mgmt"), .permissionDenied())
    }
}
