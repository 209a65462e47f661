// swift-tools-version:6.0
// Odyssey: a plugin-hosting runtime for Qubes-style security domains.
import PackageDescription
import Foundation

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// Swift plugins export only the ABI entry symbol (see Plugins/exports.map).
let pluginLinker: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--version-script=\(root)/Plugins/exports.map"])]

/// One dynamic library per plugin folder. Every target under Plugins/ needs an
/// explicit path: SwiftPM reserves Plugins/ for package plugins otherwise.
func plugin(_ product: String, target: String, dependencies: [Target.Dependency] = []) -> (Product, Target) {
    (.library(name: product, type: .dynamic, targets: [target]),
     .target(name: target, dependencies: ["PluginABI", "PluginKit"] + dependencies,
             path: "Plugins/\(product)/Sources", linkerSettings: pluginLinker))
}

let plugins: [(Product, Target)] = [
    plugin("vmm-libvirt", target: "VmmLibvirt", dependencies: ["CLibvirt", "LibvirtDomainXML"]),
    plugin("vmm-xen", target: "VmmXen", dependencies: ["CXenlight"]),
    plugin("vmm-native", target: "VmmNative", dependencies: ["CVmmNative"]),
    plugin("vchan-socket", target: "VchanSocket", dependencies: ["VchanSocketCore"]),
    plugin("vchan-virtio-serial", target: "VchanVirtioSerial", dependencies: ["MuxVchanCore", "StreamMux"]),
    plugin("vchan-vsock", target: "VchanVsock", dependencies: ["MuxVchanCore", "StreamMux"]),
    plugin("vchan-xen", target: "VchanXen", dependencies: ["CXenvchan", "XenVchanCore", "VchanSocketCore"]),
    plugin("gui-daemon", target: "GuiDaemon", dependencies: ["CX11", "GuiProtocol"]),
]

let package = Package(
    name: "Odyssey",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "odysseyd", targets: ["odysseyd"]),
        .executable(name: "ody", targets: ["ody"]),
        .executable(name: "odyssey-jailer", targets: ["odyssey-jailer"]),
        .executable(name: "odyssey-agent", targets: ["odyssey-agent"]),
        .executable(name: "ody-call", targets: ["ody-call"]),
    ] + plugins.map(\.0),
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The ABI: one header plus compile-time layout pins.
        .target(name: "PluginABI", path: "Sources/PluginABI"),
        // Swift helpers linked statically into each Swift plugin.
        .target(name: "PluginKit", dependencies: ["PluginABI"], path: "Sources/PluginKit"),
        // The few libc calls Swift cannot reach (see its header).
        .target(name: "CSupport", path: "Sources/CSupport"),
        // The qrexec policy engine: pure, no I/O in the matcher.
        .target(name: "Policy", path: "Sources/Policy"),
        // SQLite's C API for the domain store (apt: libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // The domain store, volumes and templates (no Foundation; linked into odysseyd).
        .target(name: "Domains", dependencies: ["CSQLite"], path: "Sources/Domains", exclude: ["README.md"]),
        // qrexec framing, message validators and name sanitisers (no Foundation).
        .target(name: "Qrexec", dependencies: ["VchanSocketCore"], path: "Sources/Qrexec"),
        // The GUI protocol between a domain's agent and the trusted gui plugin:
        // wire format, limits, one validator per message (no Foundation).
        .target(name: "GuiProtocol", path: "Sources/GuiProtocol"),
        // Xlib for the gui-daemon plugin and its tests (apt: libx11-dev).
        .systemLibrary(name: "CX11", path: "Plugins/gui-daemon/CX11", providers: [.apt(["libx11-dev"])]),
        // The host runtime: loader, config, daemon, admin socket.
        .target(name: "Host", dependencies: [
            "PluginABI", "CSupport", "Policy", "Domains", "Qrexec", "VchanSocketCore",
            .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/Host"),
        .executableTarget(name: "odysseyd", dependencies: [
            "Host", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/odysseyd"),
        .executableTarget(name: "ody", dependencies: [
            "Host", "Policy", "Qrexec", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/ody",
        // Static and Foundation-free: it starts in ~1.5 ms instead of ~10 ms,
        // which is most of an `ody run` into a running domain.
        linkerSettings: [.unsafeFlags(["-static-executable"]), .linkedLibrary("_FoundationCollections"),
                         .linkedLibrary("_FoundationCShims")]),

        .executableTarget(name: "odyssey-bench", dependencies: [
            "Host", "Policy", "Domains", "Qrexec", "VchanSocketCore", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/odyssey-bench"),
        // vmm-native: one-line C wrappers Swift cannot reach (pidfd_open/send_signal, dladdr, pipe2, F_SETPIPE_SZ).
        .target(name: "CVmmNative", path: "Plugins/vmm-native/CShim"),
        // The native jailer: a small single-threaded C program the plugin posix_spawns (Jailer/jailer.c says why).
        .executableTarget(name: "odyssey-jailer", path: "Plugins/vmm-native/Jailer",
                          linkerSettings: [.linkedLibrary("seccomp")]),
        // Socket vchan code shared by the vchan-socket plugin and the agent;
        // its C shim holds what Swift cannot call (CMSG_*, ioctl, accept4, dup3).
        .target(name: "CVchanSocket", path: "Plugins/vchan-socket/CShim"),
        .target(name: "VchanSocketCore", dependencies: ["CVchanSocket"], path: "Plugins/vchan-socket/Core"),
        // Many byte streams over one (a virtio-serial port, a vsock connection),
        // each a local socketpair; Glibc only: the static agent links it.
        .target(name: "StreamMux", dependencies: ["CVchanSocket"], path: "Sources/StreamMux"),
        // The host side shared by the multiplexed vchans (virtio-serial, vsock):
        // libvchan channels over mux listeners, one session per domain, the ops slots.
        .target(name: "MuxVchanCore", dependencies: ["PluginABI", "PluginKit", "StreamMux", "CVchanSocket", "VchanSocketCore"],
                path: "Plugins/vchan-virtio-serial/Core"),
        // The in-domain agent, fully static (needs only /bin/sh and /etc/passwd
        // in the domain); its C shim is the code between fork and exec.
        .target(name: "CAgentShim", path: "Sources/odyssey-agent/CShim"),
        .executableTarget(name: "odyssey-agent", dependencies: ["Qrexec", "VchanSocketCore", "CAgentShim", "StreamMux", "XenVchanLinked"],
                          path: "Sources/odyssey-agent/Agent", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // ody-call: qrexec-client-vm for domains, fully static like the agent.
        .executableTarget(name: "ody-call", dependencies: ["Qrexec", "VchanSocketCore"],
                          path: "Sources/ody-call", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // Not SwiftPM targets: odyssey-addon-run (Sources/odyssey-addon-run)
        // and the add-ons (Plugins/addons) run inside domains with libc
        // alone, so scripts/build-addons builds them with cc (it says why).
        // The mux over AF_VSOCK, run only inside a TCG guest with vsock_loopback
        // (VchanMuxVsockGuestTests boots it); static like the agent.
        .executableTarget(name: "odyssey-mux-vsock-check", dependencies: ["StreamMux"], path: "Tests/MuxVsockCheck",
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // A static vchan-xen client linked like the agent; the Xen tier runs it (XenVchanConformanceTests).
        .executableTarget(name: "odyssey-xen-vchan-check", dependencies: ["XenVchanCore", "XenVchanLinked", "CXenvchan", "PluginABI"],
                          path: "Tests/XenVchanCheck", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .testTarget(name: "AddonTests", dependencies: ["Host", "PluginABI"], path: "Tests/AddonTests"),
        .testTarget(name: "QrexecTests", dependencies: ["Qrexec"], path: "Tests/QrexecTests"),
        .testTarget(name: "AgentTests", dependencies: ["Host", "Qrexec", "VchanSocketCore", "PluginABI"], path: "Tests/AgentTests"),
        .testTarget(name: "AdminTests", dependencies: ["Host", "Domains", "Policy", .product(name: "Logging", package: "swift-log")], path: "Tests/AdminTests"),
        .testTarget(name: "BrokerTests", dependencies: ["Host", "Domains", "Policy", "Qrexec", "VchanSocketCore", "PluginABI"], path: "Tests/BrokerTests"),
        .testTarget(name: "IntegrationTests", dependencies: ["Host", "Domains"], path: "Tests/IntegrationTests"),
        .testTarget(name: "NativeTests", dependencies: ["PluginABI", "odyssey-jailer"], path: "Tests/NativeTests"),
        .testTarget(name: "DomainsTests", dependencies: ["Domains"], path: "Tests/DomainsTests"),
        .testTarget(name: "PolicyTests", dependencies: ["Policy"], path: "Tests/PolicyTests"),
        .testTarget(name: "GuiDaemonTests", dependencies: ["GuiProtocol", "PluginABI", "CX11"], path: "Tests/GuiDaemonTests"),
        .testTarget(name: "GuiProtocolTests", dependencies: ["GuiProtocol"], path: "Tests/GuiProtocolTests"),
        .testTarget(name: "ABITests", dependencies: ["PluginABI"], path: "Tests/ABITests"),
        .testTarget(name: "HostTests", dependencies: ["Host", "PluginABI", "PluginKit"], path: "Tests/HostTests"),
        .testTarget(name: "ConformanceTests", dependencies: ["Host", "PluginABI", "PluginKit", "LibvirtDomainXML", "StreamMux", "CVchanSocket", "VchanSocketCore"],
                    path: "Tests/ConformanceTests"),
        // vmm-libvirt's description -> domain XML, a target of its own so the conformance tests check it directly.
        .target(name: "LibvirtDomainXML", dependencies: ["PluginKit"], path: "Plugins/vmm-libvirt/DomainXML"),
        .systemLibrary(name: "CLibvirt", path: "Plugins/vmm-libvirt/CLibvirt", providers: [.apt(["libvirt-dev"])]),
        .systemLibrary(name: "CXenlight", path: "Plugins/vmm-xen/CXenlight", providers: [.apt(["libxen-dev"])]),
        // libxenvchan/libxenstore headers for vchan-xen (dlopened at its first open, like libxl).
        .systemLibrary(name: "CXenvchan", path: "Plugins/vchan-xen/CXenvchan", providers: [.apt(["libxen-dev"])]),
        // vchan-xen's channels over a table of libxenvchan calls, Glibc only: the plugin fills the
        // table by dlopen; XenVchanLinked fills it from the static libraries (the agent in a domU).
        .target(name: "XenVchanCore", dependencies: ["CXenvchan", "PluginABI"], path: "Plugins/vchan-xen/Core"),
        .target(name: "XenVchanLinked", dependencies: ["XenVchanCore", "CXenvchan"], path: "Plugins/vchan-xen/Linked",
                linkerSettings: ["xenvchan", "xengnttab", "xenevtchn", "xenstore", "xentoolcore", "xentoollog"].map { .linkedLibrary($0) }),
    ] + plugins.map(\.1)
)
