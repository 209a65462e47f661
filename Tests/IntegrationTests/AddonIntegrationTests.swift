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
        let hello = try XCTUnwrap(h.daemon.backends.addonPackages().first { $0.id == "hello-addon" })
        XCTAssertEqual(hello.services, [.init(name: "odyssey.Hello", side: .admin)])
        XCTAssertEqual(hello.policyFile, "70-hello.policy")

        r = try h.run("work", call, user: "user")
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.hasPrefix("Hello, work, from "), "the caller's name comes from its channel: \(r.1)")

        // An admin's file of the same name replaces the add-on's default policy.
        try "odyssey.Hello * @anyvm @adminvm deny\n".write(toFile: h.dir + "/state/policy.d/70-hello.policy", atomically: true, encoding: .utf8)
        h.daemon.policy.reload(reason: "test")
        r = try h.run("work", call, user: "user")
        XCTAssertEqual(r.0, 126, "the admin's 70-hello.policy wins: \(r.2)")
        let report = AddonReport(packages: h.daemon.backends.addonPackages(), policyDirectories: h.daemon.policy.directories, refused: [])
        XCTAssertEqual(report.addons.first { $0.id == "hello-addon" }?.policyOverriddenBy, h.dir + "/state/policy.d")
    }
}
