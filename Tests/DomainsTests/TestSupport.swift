import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary directory, removed when the test ends.
func makeTempDir(_ test: XCTestCase, _ tag: String = "domains") -> String {
    var template = Array("/tmp/odyssey-\(tag)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    let dir = String(cString: p!)
    test.addTeardownBlock {
        // Volumes a test left mounted (private images, snapshots) go first.
        for m in FileOps.mountPoints(under: dir).sorted(by: { $0.count > $1.count }) { _ = umount2(m, Int32(MNT_DETACH)) }
        _ = try? FileOps.removeTree(dir)
    }
    return dir
}

func openStore(_ dir: String, defaultVmm: String = "native") throws -> DomainStore {
    try DomainStore(path: dir + "/domains.db", defaultVmm: defaultVmm)
}

/// Asserts that `body` throws a DomainError with `qubesType`, whose message contains `contains`.
func assertDomainError<T>(_ qubesType: String, _ contains: String = "", file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(qubesType)", file: file, line: line)
    } catch let e as DomainError {
        XCTAssertEqual(e.qubesType, qubesType, "\(e)", file: file, line: line)
        XCTAssertTrue(contains.isEmpty || e.message.contains(contains), "message \"\(e.message)\" lacks \"\(contains)\"", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// A store with a template `fedora`, AppVM `work` (blue) and a net domain `sys-net`.
func populatedStore(_ test: XCTestCase) throws -> (DomainStore, String) {
    let dir = makeTempDir(test)
    let s = try openStore(dir)
    try s.create("fedora", class: .templateVM, label: "black")
    try s.create("work", class: .appVM, label: "blue", template: "fedora")
    return (s, dir)
}

/// Collects change records from a store's observer.
final class Recorder: @unchecked Sendable {
    private let lock = NSLockLite()
    private var records: [ChangeRecord] = []
    func append(_ r: [ChangeRecord]) { lock.locked { records += r } }
    var all: [ChangeRecord] { lock.locked { records } }
    func clear() { lock.locked { records.removeAll() } }
}

/// A pthread mutex (tests may use Foundation-free helpers too).
final class NSLockLite: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return body()
    }
}
