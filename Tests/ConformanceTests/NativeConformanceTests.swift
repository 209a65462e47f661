// vmm-native (built by another engineer) through the same generic body. It
// runs once libvmm-native.so is in the build directory and the tests run as
// root (namespaces, cgroups); until then it skips and says why.
import Foundation
import Host
import PluginABI
import XCTest

final class NativeConformanceTests: XCTestCase {
    func testConformance() throws {
        guard Build.isBuilt("vmm-native"), FileManager.default.fileExists(atPath: Build.manifest("vmm-native")) else {
            throw XCTSkip("vmm-native is not built (\(Build.library("vmm-native")) or its manifest is missing); run `swift build` once it exists")
        }
        guard geteuid() == 0 else { throw XCTSkip("vmm-native conformance needs root (namespaces, cgroups)") }
        guard let busybox = ["/bin/busybox", "/usr/bin/busybox"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("busybox is missing (apt-get install busybox-static): it is the domains' root")
        }
        let fx = try HostFixture(products: ["vmm-native"], helpers: ["odyssey-jailer"], configBody: """
        [vmm]
        default = "native"
        [vmm.native]
        state_dir = "@DIR@/native-state"
        cgroup_parent = "odyssey-conformance-\(getpid())"
        seccomp_profile = "\(Build.repoRoot)/config/seccomp/native-domain.json"
        """)
        XCTAssertEqual(fx.backends.registry.refused, [], "plugin refused")
        let root = try Self.template(in: fx.dir, busybox: busybox)
        let vmm = try fx.backends.vmm("native")
        try VmmConformance(backend: vmm, recorder: fx.recorder, spec: { name in
            let safe = name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? String($0) : "_" }.joined()
            return DomainSpec(name: name, memoryMiB: 64, vcpus: 1, params: [
                ("root_dir", root), ("private_dir", "\(fx.dir)/private/\(safe)"), ("run_dir", "\(fx.dir)/run/\(safe)"),
                ("init", "/bin/sh"), ("arg0", "-c"), ("arg1", "trap 'exit 0' TERM; while :; do sleep 1; done"),
            ])
        }).runAll()
    }

    /// A minimal busybox root: /bin/busybox and its applets.
    static func template(in dir: String, busybox: String) throws -> String {
        let t = dir + "/template", fm = FileManager.default
        for d in ["bin", "etc", "root", "tmp"] { try fm.createDirectory(atPath: "\(t)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: busybox, toPath: "\(t)/bin/busybox")
        for applet in ["sh", "sleep", "true", "cat", "echo"] { try fm.createSymbolicLink(atPath: "\(t)/bin/\(applet)", withDestinationPath: "busybox") }
        return t
    }
}
