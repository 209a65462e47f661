// The vendor path: install the SDK (header + .pc), build the example add-on
// with plain cc and pkg-config, out of tree, and load it next to a Swift plugin.
import Foundation
import Logging
import XCTest
@testable import Host

final class SDKTests: XCTestCase {
    func testOutOfTreeCAddonLoadsBesideSwiftPlugin() throws {
        let t = TempDir("odyssey-sdk")
        let prefix = t.sub("prefix")
        let make = try runProcess("/usr/bin/make", ["-s", "-C", Repo.root, "install-sdk", "PREFIX=\(prefix)"])
        XCTAssertEqual(make.status, 0, make.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: prefix + "/include/odyssey/odyssey_plugin.h"))

        // Build in a copy outside the tree, with nothing but the installed SDK.
        let src = t.sub("vendor")
        for f in ["hello.c", "hello-addon.json", "70-hello.policy", "Makefile"] {
            try FileManager.default.copyItem(atPath: Repo.root + "/Plugins/examples/hello-addon/" + f, toPath: src + "/" + f)
        }
        let build = try runProcess("/usr/bin/make", ["-s", "-C", src], env: ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"])
        XCTAssertEqual(build.status, 0, build.stderr)
        let nm = try runProcess("/usr/bin/nm", ["-D", "--defined-only", src + "/libhello-addon.so"])
        XCTAssertEqual(nm.stdout.split(separator: "\n").map { $0.split(separator: " ").last.map(String.init) ?? "" },
                       ["odyssey_plugin_entry"], "the C add-on exports exactly the entry symbol")

        // Side by side with a Swift plugin from the build.
        let dir = t.sub("plugins")
        try FileManager.default.copyItem(atPath: src + "/libhello-addon.so", toPath: dir + "/libhello-addon.so")
        try FileManager.default.copyItem(atPath: src + "/hello-addon.json", toPath: dir + "/hello-addon.json")
        let swiftPlugin = try firstSwiftPlugin()
        try FileManager.default.copyItem(atPath: swiftPlugin.lib, toPath: dir + "/" + (swiftPlugin.lib as NSString).lastPathComponent)
        try FileManager.default.copyItem(atPath: swiftPlugin.manifest, toPath: dir + "/" + (swiftPlugin.manifest as NSString).lastPathComponent)

        let reg = PluginLoader(logger: Logger(label: "t"), events: EventBus()).loadAll(from: [dir])
        XCTAssertEqual(reg.refused, [])
        XCTAssertEqual(Set(reg.loaded.map(\.id)), ["hello-addon", swiftPlugin.id])
        let hello = try XCTUnwrap(reg.factory(.addon, "hello"))
        XCTAssertEqual(CapabilityNames.names(kind: .addon, bits: hello.capabilities), ["admin-side"])
    }

    /// A first-party Swift plugin that `swift build` produced.
    private func firstSwiftPlugin() throws -> (lib: String, manifest: String, id: String) {
        for name in ["vmm-libvirt", "vmm-native", "vmm-xen", "vchan-socket"] {
            let lib = Repo.buildDir + "/lib\(name).so"
            let manifest = Repo.root + "/Plugins/\(name)/\(name).json"
            if FileManager.default.fileExists(atPath: lib), FileManager.default.fileExists(atPath: manifest) {
                return (lib, manifest, name)
            }
        }
        throw XCTSkip("no Swift plugin built yet; run `make test`")
    }
}
