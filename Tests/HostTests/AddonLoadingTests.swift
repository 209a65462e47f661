// The add-on part of plugin loading: manifest fields checked, describe()
// held to the manifest, event hooks delivered, the view built from both.
import Foundation
import Logging
import XCTest
@testable import Host

final class AddonLoadingTests: XCTestCase {
    private let manifest = """
        {"id": "hook-addon", "library": "libhook.so", "abi": {"major": 1, "minor": 1}, "factories": [
          {"name": "hooks", "kind": "addon", "services": [{"name": "test.Hooked", "side": "domain"}],
           "events": ["domain-running", "domain-halted"], "config": {"log": {"type": "path"}}}]}
        """

    private func build(_ dir: String, defines: [String] = []) throws {
        let r = try runProcess("/usr/bin/cc", ["-shared", "-fPIC", "-Wall", "-Werror", "-I", Repo.root + "/Sources/PluginABI/include"]
                               + defines.map { "-D" + $0 } + ["-o", dir + "/libhook.so", Repo.root + "/Tests/Fixtures/plugins/hook_addon.c"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try manifest.write(toFile: dir + "/hook.json", atomically: true, encoding: .utf8)
    }

    private func backends(_ dir: String, log: String, events: EventBus = EventBus()) throws -> Backends {
        let config = try OdysseyConfig.parse("""
            plugin_dirs = ["\(dir)"]
            state_dir = "\(dir)/state"
            [addon.hooks]
            log = "\(log)"
            """, path: dir + "/odyssey.toml")
        return Backends.load(config: config, logger: Logger(label: "t"), events: events)
    }

    func testDescribeThatDisagreesWithTheManifestIsRefused() throws {
        let t = TempDir("odyssey-addon-lie")
        try build(t.path, defines: ["LIE"])
        let b = try backends(t.path, log: t.path + "/log")
        XCTAssertEqual(b.registry.loaded.count, 0)
        let why = try XCTUnwrap(b.registry.refused.first?.reason)
        XCTAssertTrue(why.contains("manifest/library mismatch: manifest lists services [test.Hooked (domain)], describe() says [test.Other (domain)]"), why)
    }

    func testEventHooksGetTheLifecycleEventsTheyList() throws {
        let t = TempDir("odyssey-addon-hooks")
        try build(t.path)
        let events = EventBus()
        let b = try backends(t.path, log: t.path + "/log", events: events)
        XCTAssertEqual(b.registry.refused, [])
        let hooks = AddonHooks(events: events, logger: Logger(label: "t"))
        hooks.replace(with: b)
        for state in [PowerState.running, .paused, .halted] {
            events.publish(HostEvent(kind: .lifecycle, source: "vmm.test", domain: "work", state: state))
        }
        // Delivered on the add-on's own queue: wait for it (no wall-clock assertion).
        var text = ""
        for _ in 0..<500 where !text.contains("domain-halted") {
            text = (try? String(contentsOfFile: t.path + "/log", encoding: .utf8)) ?? ""
            usleep(10_000)
        }
        XCTAssertEqual(text, "domain-running work\ndomain-halted work\n", "paused is not hooked")
    }

    func testAddonManifestFieldsAreChecked() throws {
        func refusal(_ factory: String) -> String {
            let json = """
                {"id": "x", "library": "libx.so", "abi": {"major": 1, "minor": 1}, "factories": [\(factory)]}
                """
            do { _ = try PluginManifest.decode(Data(json.utf8)); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon", "services": [{"name": "a+b", "side": "domain"}]}"#)
            .contains("no '+'"))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon", "services": [{"name": "a.B", "side": "guest"}]}"#)
            .contains("must be \"domain\" or \"admin\""))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon", "commands": ["../bin/sh"]}"#).contains("each command must be"))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon", "commands": ["ody-x"], "policy": "../70-x.policy"}"#)
            .contains("policy\" must be a file name"))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon", "events": ["reboot"]}"#).contains("known events are"))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "addon"}"#).contains("provides no services, commands or events"))
        XCTAssertTrue(refusal(#"{"name": "x", "kind": "vmm", "commands": ["ody-x"]}"#).contains("only for add-on factories"))
        XCTAssertEqual(refusal(#"{"name": "x", "kind": "addon", "services": [{"name": "qubes.Filecopy", "side": "domain"}], "commands": ["ody-copy"], "policy": "70-x.policy"}"#), "accepted")
    }
}
