// Add-ons in a running system (issue 7): a vendor add-on built out of tree
// against the installed SDK, dropped into a plugin directory and reached
// from a domain after a reload; and the first-party add-ons between real
// domains, under the host's policy. Needs root (domains).
import Domains
import Foundation
import XCTest
@testable import Host

final class AddonIntegrationTests: XCTestCase {
    /// Runs a program on the host; returns (status, stdout+stderr).
    private func sh(_ argv: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testVendorAddonInstalledIntoARunningSystemAnswersADomain() throws {
        let h = try Host("odyssey-vendor")
        defer { h.shutdownAll() }
        try h.makeBusyboxTemplate()
        try h.create("work")
        try h.daemon.start()
        try h.daemon.runtime.start("work")
        let call = "/.odyssey/bin/ody-call dom0 odyssey.Hello"

        // Not installed yet: no policy names the service, so it is denied.
        var r = try h.run("work", call, user: "user")
        XCTAssertEqual(r.0, 126, "refused before the add-on exists: \(r.2)")

        // The vendor's path: the SDK installed, the add-on built out of tree
        // with cc and pkg-config only, installed with its own Makefile.
        let sdk = h.dir + "/sdk", src = h.dir + "/vendor"
        var b = try sh(["/usr/bin/make", "-s", "-C", Build.root, "install-sdk", "PREFIX=\(sdk)"])
        XCTAssertEqual(b.0, 0, b.1)
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for f in ["hello.c", "hello-addon.json", "70-hello.policy", "Makefile"] {
            try FileManager.default.copyItem(atPath: Build.root + "/Plugins/examples/hello-addon/" + f, toPath: src + "/" + f)
        }
        b = try sh(["/usr/bin/make", "-s", "-C", src, "install", "PLUGIN_DIR=\(h.pluginDir)"],
                   env: ["PKG_CONFIG_PATH": sdk + "/lib/pkgconfig"])
        XCTAssertEqual(b.0, 0, b.1)

        // A reload, nothing restarted: the domain keeps running.
        h.daemon.reload()
        XCTAssertEqual(h.daemon.runtime.powerState("work"), .running)
        let hello = try XCTUnwrap(h.daemon.backends.addonPackages.first { $0.id == "hello-addon" })
        XCTAssertEqual(hello.services, [.init(name: "odyssey.Hello", side: .admin)])
        XCTAssertEqual(hello.policyFile, "70-hello.policy")

        r = try h.run("work", call, user: "user")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.hasPrefix("Hello, work, from "), "the caller's name comes from its channel: \(r.1)")

        // `ody addons` through the Admin API: the add-on, its side and policy.
        let listed = try XCTUnwrap(h.daemon.adminMethods).handle(
            AdminRequest(method: "admin.odyssey.Addons", argument: "", source: "dom0", destType: "name", dest: "dom0", payload: []),
            callerSource: "dom0")
        guard case .success(let json) = listed else { return XCTFail("admin.odyssey.Addons failed: \(listed)") }
        let addons = try JSONDecoder().decode(AddonReport.self, from: Data(json)).addons
        let entry = try XCTUnwrap(addons.first { $0.id == "hello-addon" })
        XCTAssertEqual(entry.services.map { "\($0.name) \($0.side)" }, ["odyssey.Hello admin"])
        XCTAssertEqual(entry.policyText, "# hello-addon: any domain may greet the admin domain\nodyssey.Hello * @anyvm @adminvm allow\n")
        XCTAssertNil(entry.policyOverriddenBy)

        // An admin's file of the same name replaces the add-on's default policy.
        try "odyssey.Hello * @anyvm @adminvm deny\n".write(toFile: h.dir + "/state/policy.d/70-hello.policy", atomically: true, encoding: .utf8)
        h.daemon.policy.reload(reason: "test")
        r = try h.run("work", call, user: "user")
        XCTAssertEqual(r.0, 126, "the admin's 70-hello.policy wins: \(r.2)")
        let report = AddonReport(packages: h.daemon.backends.addonPackages, policyDirectories: h.daemon.policy.directories, refused: [])
        XCTAssertEqual(report.addons.first { $0.id == "hello-addon" }?.policyOverriddenBy, h.dir + "/state/policy.d")
    }

    /// The three add-on journeys of the demo, between real domains of a host
    /// template, under policy: a tree copied work -> personal, a file edited
    /// in a disposable coming back, a PDF made trusted through a disposable,
    /// and a detached signature made in work with the key in vault.
    func testFirstPartyAddonsBetweenRealDomains() throws {
        let h = try Host("odyssey-addons", extraConfig: """
            [addon.open-in-vm]
            viewer = "/usr/local/bin/edit-viewer"
            """)
        defer { h.shutdownAll() }
        try FileManager.default.createDirectory(atPath: h.dir + "/state/policy.d", withIntermediateDirectories: true)
        try """
            qubes.Filecopy     *  work   personal   allow
            qubes.Gpg          *  work   vault      allow

            """.write(toFile: h.dir + "/state/policy.d/30-test.policy", atomically: true, encoding: .utf8)
        try mapped { () throws(DomainError) in
            _ = try TemplateBuilder(store: h.daemon.store, volumes: h.daemon.volumes).createFromHost("debian", label: "black")
        }
        for n in ["work", "personal", "vault", "dvm"] { try h.create(n, template: "debian") }
        try mapped { () throws(DomainError) in
            try h.daemon.store.setProperty("template_for_dispvms", of: "dvm", to: "True")
            try h.daemon.store.setProperty("default_dispvm", of: "work", to: "dvm")
        }
        try h.daemon.start()
        h.daemon.policy.reload(reason: "test policy written")
        func inside(_ d: String, _ cmd: String, stdin: String? = nil) throws -> (Int32, String, String) {
            try h.run(d, cmd, user: "user", stdin: stdin)
        }

        // The disposables' viewer: appends a line. Placed in the template's
        // root (a new file; the host's hard-linked files are not touched).
        let viewer = h.daemon.volumes.rootDir("debian") + "/usr/local/bin/edit-viewer"
        try "#!/bin/sh\necho edited in $(hostname) >> \"$1\"\n".write(toFile: viewer, atomically: true, encoding: .utf8)
        chmod(viewer, 0o755)
        for n in ["work", "personal", "vault"] { try h.daemon.runtime.start(n) }

        // File copy: a small tree, work -> personal.
        var r = try inside("work", "mkdir -p d/sub && echo one > d/a.txt && echo two > d/sub/b.txt && ody-copy --to personal d")
        XCTAssertEqual(r.0, 0, r.2)
        r = try inside("personal", "cat QubesIncoming/work/d/a.txt QubesIncoming/work/d/sub/b.txt")
        XCTAssertEqual(r.1, "one\ntwo\n", r.2)

        // Open in a disposable: the edited file comes back.
        r = try inside("work", "echo 'my notes' > notes.txt && ody-open-in-dvm notes.txt")
        XCTAssertEqual(r.0, 0, r.2)
        r = try inside("work", "cat notes.txt")
        XCTAssertTrue(r.1.hasPrefix("my notes\nedited in disp"), r.1)

        // PDF: rendered in a disposable, rebuilt from pixels in work.
        r = try inside("work", "cat > doc.pdf && ody-convert-pdf doc.pdf", stdin: Self.twoPagePDF)
        XCTAssertEqual(r.0, 0, r.2)
        r = try inside("work", "pdfinfo doc.trusted.pdf")
        let pages = r.1.split(separator: "\n").first { $0.hasPrefix("Pages:") }.map { $0.split(separator: " ").last ?? "" }
        XCTAssertEqual(pages, "2", r.1)
        XCTAssertEqual(try inside("work", "ls QubesUntrustedPDFs").1, "doc.pdf\n")

        // Split GPG: the key only in vault; work signs, and verifies locally
        // with the public key the vault exports.
        r = try inside("vault", "gpg --batch --passphrase '' --quick-gen-key 'Vault <vault@example.org>' ed25519 sign never")
        XCTAssertEqual(r.0, 0, r.2)
        // The vault asks the user once per source domain (odyssey.GpgConsent,
        // an `ask` in the add-on's default policy): answered here as
        // `ody policy answer` would.
        final class Outcome: @unchecked Sendable {   // written by one thread, read after `done`
            var result: (Int32, String, String)?
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        nonisolated(unsafe) let host = h
        Thread {
            outcome.result = try? host.run("work", """
                export ODYSSEY_GPG_DOMAIN=vault
                echo 'signed data' > m && ody-gpg --detach-sign --armor < m > m.asc && ody-gpg --export --armor > vault.asc &&
                gpg --batch --import vault.asc 2>/dev/null && gpg --batch --verify m.asc m
                """, user: "user")
            outcome.done.signal()
        }.start()
        var asked: PendingAsk?
        for _ in 0..<1000 where asked == nil {
            asked = h.daemon.broker.pending().first { $0.service.hasPrefix("odyssey.GpgConsent") }
            if asked == nil { usleep(10_000) }
        }
        let ask = try XCTUnwrap(asked, "vault asked for consent")
        XCTAssertEqual(ask.source, "vault")
        XCTAssertEqual(ask.service, "odyssey.GpgConsent+work")
        try h.daemon.broker.answer(id: ask.id, allow: ask.defaultTarget ?? ask.choices.first)
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 120), .success)
        r = try XCTUnwrap(outcome.result)
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.2.contains("Good signature from \"Vault <vault@example.org>\""), r.2)
        XCTAssertNotEqual(try inside("work", "gpg --batch --list-secret-keys | grep -c sec").1, "1\n", "no secret key in work")
        // Remembered: the next signature does not ask again.
        r = try inside("work", "ODYSSEY_GPG_DOMAIN=vault ody-gpg --clearsign < m > m.clear")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertEqual(h.daemon.broker.pending(), [])

        // Issue 11: the consent belongs to that domain, not to its name. work
        // removed and created again is asked again (and refused here).
        try h.daemon.runtime.shutdown("work", wait: true)
        try mapped { () throws(DomainError) in
            try h.daemon.volumes.removeVolumes("work")
            try h.daemon.store.remove("work")
        }
        try h.create("work", template: "debian")
        try h.daemon.runtime.start("work")
        let again = Outcome()
        Thread {
            again.result = try? host.run("work", "echo x | ODYSSEY_GPG_DOMAIN=vault ody-gpg --clearsign", user: "user")
            again.done.signal()
        }.start()
        asked = nil
        for _ in 0..<1000 where asked == nil {
            asked = h.daemon.broker.pending().first { $0.service == "odyssey.GpgConsent+work" }
            if asked == nil { usleep(10_000) }
        }
        try h.daemon.broker.deny(id: try XCTUnwrap(asked, "the new work must be asked for consent").id)
        XCTAssertEqual(again.done.wait(timeout: .now() + 120), .success)
        r = try XCTUnwrap(again.result)
        XCTAssertEqual(r.0, 1, r.2)
        XCTAssertTrue(r.2.contains("the vault's user did not allow work to use its keys"), r.2)
    }

    /// A real two-page PDF (text in Helvetica), offsets computed.
    static let twoPagePDF: String = {
        var objects = [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 5 0 R /Resources << /Font << /F1 7 0 R >> >> >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 6 0 R /Resources << /Font << /F1 7 0 R >> >> >>",
        ]
        for text in ["Page one", "Page two"] {
            let stream = "BT /F1 24 Tf 40 100 Td (\(text)) Tj ET"
            objects.append("<< /Length \(stream.utf8.count) >>\nstream\n\(stream)\nendstream")
        }
        objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        var pdf = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (i, o) in objects.enumerated() {
            offsets.append(pdf.utf8.count)
            pdf += "\(i + 1) 0 obj\n\(o)\nendobj\n"
        }
        let xref = pdf.utf8.count
        pdf += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for off in offsets { pdf += String(repeating: "0", count: 10 - String(off).count) + "\(off) 00000 n \n" }
        pdf += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return pdf
    }()
}
