import Foundation
import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// Red team of issue 11: concurrent disposables of one template each mount
/// the template's private image for their copy. Any domain allowed `@dispvm`
/// can start several at once; they must all get the template's content, the
/// image must never be mounted twice (two ext4 instances on one file), and a
/// copy must not unmount the volume under the template starting meanwhile.
/// Real images, loop devices and mounts (root only).
final class PrivateVolumeConcurrencyTests: XCTestCase {
    func testConcurrentDisposablesOfOneTemplateAllGetItsPrivate() throws {
        try XCTSkipIf(getuid() != 0, "needs root for loop devices and mounts")
        let dir = makeTempDir(self, "dispconc")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state", defaultPrivateSize: 64 << 20)
        try FileOps.makeDirectories(dir + "/rootfs/usr/bin")
        try FileOps.writeFile(dir + "/rootfs/usr/bin/hello", "hi")
        try TemplateBuilder(store: s, volumes: v).createFromRootfs("fedora", source: dir + "/rootfs")
        try s.create("dvm", class: .appVM, label: "red", template: "fedora")
        try v.createVolumes("dvm", klass: .appVM)
        try s.setProperty("template_for_dispvms", of: "dvm", to: "True")
        try v.withPrivateOpen("dvm") { () throws(DomainError) in
            // Enough files that each copy takes a while: the copies overlap.
            for i in 0..<200 { try FileOps.writeFile(v.privateDir("dvm") + "/file\(i)", "content \(i)") }
        }
        let disposables = try (0..<8).map { _ in try s.createDisposable(from: "dvm").name }
        let snap = s.snapshot()

        // Eight disposables and the template itself start at once.
        let names = disposables + ["dvm"]
        let results = ResultBox(count: names.count)
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do { results.set(i, .success(try v.prepareStart(names[i], in: snap))) } catch { results.set(i, .failure(error)) }
        }
        for (i, name) in names.enumerated() {
            switch results.get(i) {
            case .success(let plan)?:
                XCTAssertEqual(try? FileOps.readFile(plan.privateDir! + "/file199"), "content 199", "\(name) got the whole private")
            case .failure(let e)?: XCTFail("\(name) failed to start: \(e)")
            case nil: XCTFail("\(name): no result")
            }
        }
        XCTAssertNotNil(LoopDevice.mountedDevice(at: v.privateDir("dvm")), "the running template keeps its private mounted")
        XCTAssertEqual(try? FileOps.readFile(v.privateDir("dvm") + "/file0"), "content 0")

        for name in names { try v.cleanupAfterStop(name, in: snap) }
        XCTAssertNil(LoopDevice.mountedDevice(at: v.privateDir("dvm")), "a halted template holds no mount")
        XCTAssertNil(LoopDevice.existingDevice(for: v.privateImage("dvm")), "nor a loop device")
    }
}

/// Results written from concurrentPerform's threads.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<StartPlan, Error>?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<StartPlan, Error>) { lock.lock(); items[i] = r; lock.unlock() }
    func get(_ i: Int) -> Result<StartPlan, Error>? { lock.lock(); defer { lock.unlock() }; return items[i] }
}
