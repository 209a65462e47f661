// The provider-neutral domain description (ABI 1.2) crosses the ABI intact:
// what the host marshals (DomainDescriptionSpec.withABI) is what a provider
// reads (PluginKit's DomainDescription.read), and a malformed description is
// refused with a message instead of being read past its bounds.
import Host
import PluginABI
import PluginKit
import XCTest

final class DomainDescriptionTests: XCTestCase {
    private func sample() -> DomainDescriptionSpec {
        var d = DomainDescriptionSpec()
        d.volumes = [
            .init(role: .root, form: .image, snapshot: true, path: "/var/lib/odyssey/domains/debian/root.img"),
            .init(role: .private, form: .image, path: "/var/lib/odyssey/domains/work/private.img", sizeMiB: 2048),
            .init(role: .volatile, form: .none, path: "", sizeMiB: 1024),
            .init(role: .modules, form: .image, readOnly: true, path: "/var/lib/odyssey/vm-kernels/6.1/modules.img"),
        ]
        d.shares = [.init(hostPath: "/var/lib/odyssey/guest-bin", guestPath: "/.odyssey/bin", tag: "odybin"),
                    .init(hostPath: "/srv/rw", guestPath: "/mnt/rw", tag: "rw_share", readOnly: false)]
        d.channel = .init(kind: .virtioSerial, path: "/run/odyssey/vport/work/vchan.sock", name: "org.odyssey.vchan.0")
        d.kernel = "/k/vmlinuz"; d.initrd = "/k/initrd.img"; d.kernelopts = "quiet loglevel=3"
        d.label = "red"; d.agentPath = "/.odyssey/bin/odyssey-agent"
        d.agentEnv = ["ODYSSEY_DEFAULT_USER=user", "A=b=c"]
        d.runDir = "/var/lib/odyssey/run/work"
        return d
    }

    private func readBack(_ spec: DomainDescriptionSpec, edit: (inout ody_domain_config) -> Void = { _ in }) throws -> DomainDescription? {
        var cfg = ody_domain_config()
        var result: Result<DomainDescription?, DomainDescription.Malformed>!
        try spec.withABI(&cfg) { (c: inout ody_domain_config) in
            edit(&c)
            do throws(DomainDescription.Malformed) { result = .success(try DomainDescription.read(c)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    func testEveryFieldCrossesTheABI() throws {
        let d = try XCTUnwrap(try readBack(sample()))
        let s = sample()
        XCTAssertEqual(d.volumes.map(\.role.rawValue), s.volumes.map(\.role.rawValue))
        XCTAssertEqual(d.volumes.map(\.form.rawValue), s.volumes.map(\.form.rawValue))
        XCTAssertEqual(d.volumes.map(\.path), s.volumes.map(\.path))
        XCTAssertEqual(d.volumes.map(\.snapshot), [true, false, false, false])
        XCTAssertEqual(d.volumes.map(\.readOnly), [false, false, false, true])
        XCTAssertEqual(d.volumes.map(\.sizeMiB), [0, 2048, 1024, 0])
        XCTAssertEqual(d.shares.map(\.tag), ["odybin", "rw_share"])
        XCTAssertEqual(d.shares.map(\.readOnly), [true, false])
        XCTAssertEqual(d.shares.map(\.hostPath), s.shares.map(\.hostPath))
        XCTAssertEqual(d.channel?.kind, .virtioSerial)
        XCTAssertEqual(d.channel?.path, "/run/odyssey/vport/work/vchan.sock")
        XCTAssertEqual(d.channel?.name, "org.odyssey.vchan.0")
        XCTAssertEqual([d.kernel, d.initrd, d.kernelopts, d.label, d.agentPath, d.runDir],
                       [s.kernel, s.initrd, s.kernelopts, s.label, s.agentPath, s.runDir])
        XCTAssertEqual(d.agentEnv, s.agentEnv)
    }

    func testAConfigEndingAtParamsHasNoDescription() throws {
        let d = try readBack(sample()) { c in
            c.struct_size = UInt32(MemoryLayout<ody_domain_config>.offset(of: \ody_domain_config.volume_count)!)
        }
        XCTAssertNil(d, "a 1.1-shaped config must read as 'no description', not an empty one")
    }

    func testMalformedDescriptionsAreRefusedWithAReason() {
        func refused(_ what: String, _ edit: @escaping (inout ody_domain_config) -> Void, _ spec: DomainDescriptionSpec? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
            do {
                _ = try readBack(spec ?? sample(), edit: edit)
                XCTFail("\(what): accepted", file: file, line: line)
            } catch let e as DomainDescription.Malformed {
                XCTAssertFalse(e.message.isEmpty, file: file, line: line)
            } catch { XCTFail("\(what): \(error)", file: file, line: line) }
        }
        refused("a count with NULL volumes", { $0.volumes = nil })
        refused("too many volumes", { $0.volume_count = 10_000 })
        refused("a count with NULL shares", { $0.shares = nil })
        var dup = sample(); dup.volumes.append(.init(role: .root, form: .tree, path: "/r"))
        refused("a role given twice", { _ in }, dup)
        var rel = sample(); rel.volumes[0].path = "relative/root.img"
        refused("a relative volume path", { _ in }, rel)
        var badTag = sample(); badTag.shares[0].tag = "Bad Tag"
        refused("a share tag with a space", { _ in }, badTag)
        var badEnv = sample(); badEnv.agentEnv = ["NOEQUALS"]
        refused("an env entry without =", { _ in }, badEnv)
        var long = sample(); long.kernelopts = String(repeating: "x", count: 5000)
        refused("an unbounded string", { _ in }, long)
        refused("an unknown role", { c in
            let v = UnsafeMutablePointer(mutating: c.volumes!)
            v[0].role = 99
        })
        refused("unknown volume flags", { c in
            let v = UnsafeMutablePointer(mutating: c.volumes!)
            v[1].flags = 0x80
        })
    }
}
