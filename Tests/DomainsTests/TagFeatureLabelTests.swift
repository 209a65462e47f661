import XCTest
@testable import Domains

final class TagFeatureLabelTests: XCTestCase {
    func testTagsIncludingAutomatic() throws {
        let (s, _) = try populatedStore(self)
        XCTAssertEqual(try s.tags(of: "work"), ["isolation-native"])
        XCTAssertEqual(try s.tags(of: "dom0"), [], "the AdminVM has no isolation provider")
        try s.addTag("managed", to: "work")
        try s.addTag("managed", to: "work")         // no change, no error
        XCTAssertEqual(try s.tags(of: "work"), ["isolation-native", "managed"])
        XCTAssertEqual(s.snapshot().domains(taggedWith: "managed"), ["work"])
        XCTAssertEqual(s.snapshot().domains(taggedWith: "isolation-native"), ["fedora", "work"])
        try s.removeTag("managed", from: "work")
        assertDomainError("QubesTagNotFoundError", "managed") { try s.removeTag("managed", from: "work") }
        assertDomainError("QubesValueError", "may contain only") { try s.addTag("bad tag", to: "work") }
        // The isolation tag follows vmm, and cannot be changed by hand.
        assertDomainError("QubesValueError", "vmm property") { try s.removeTag("isolation-native", from: "work") }
        assertDomainError("QubesValueError", "vmm property") { try s.addTag("isolation-xen", to: "work") }
        try s.addTag("isolation-native", to: "work")     // present: a no-op, as qubesd
        try s.setProperty("vmm", of: "work", to: "libvirt")
        XCTAssertEqual(try s.tags(of: "work"), ["isolation-libvirt"])
        try s.setProperty("vmm", of: "fedora", to: "xen")
        XCTAssertEqual(try s.tags(of: "fedora"), ["isolation-xen"])
        try s.resetProperty("vmm", of: "work")
        XCTAssertEqual(try s.tags(of: "work"), ["isolation-xen"], "inherited from the template")
    }

    func testCreatedByTag() throws {
        let (s, _) = try populatedStore(self)
        try s.create("mgmt", class: .appVM, label: "red", template: "fedora", caller: "admin-vm")
        XCTAssertEqual(try s.tags(of: "mgmt"), ["created-by-admin-vm", "isolation-native"])
        assertDomainError("PermissionDenied", "admin domain") { try s.removeTag("created-by-admin-vm", from: "mgmt", caller: "mgmt") }
        assertDomainError("PermissionDenied", "admin domain") { try s.addTag("created-by-x", to: "mgmt", caller: "admin-vm") }
        try s.removeTag("created-by-admin-vm", from: "mgmt", caller: "dom0")
        XCTAssertEqual(try s.tags(of: "mgmt"), ["isolation-native"])
        assertDomainError("QubesValueError") { try s.create("m2", class: .appVM, label: "red", template: "fedora", caller: "bad caller") }
    }

    func testFeatures() throws {
        let (s, _) = try populatedStore(self)
        try s.setFeature("service.cups", of: "work", to: "1")
        try s.setFeature("internal", of: "fedora", to: "")
        try s.setFeature("os", of: "fedora", to: "Linux")
        XCTAssertEqual(try s.features(of: "work"), ["service.cups": "1"])
        XCTAssertEqual(try s.snapshot().feature("service.cups", of: "work"), "1")
        assertDomainError("QubesFeatureNotFoundError") { try s.snapshot().feature("os", of: "work") }
        XCTAssertEqual(try s.snapshot().featureWithTemplate("os", of: "work"), "Linux")
        XCTAssertEqual(try s.snapshot().featureWithTemplate("internal", of: "work"), "")
        assertDomainError("QubesFeatureNotFoundError") { try s.snapshot().featureWithTemplate("nope", of: "work") }
        try s.removeFeature("service.cups", of: "work")
        assertDomainError("QubesFeatureNotFoundError") { try s.removeFeature("service.cups", of: "work") }
        assertDomainError("QubesValueError") { try s.setFeature("bad key", of: "work", to: "1") }
    }

    func testLabels() throws {
        let (s, dir) = try populatedStore(self)
        XCTAssertEqual(s.snapshot().allLabels, Label.builtin)
        let l = try s.createLabel("teal", color: "0x008080")
        XCTAssertEqual(l.index, 9)
        try s.setProperty("label", of: "work", to: "teal")
        XCTAssertEqual(try s.domain("work").label, l)
        assertDomainError("QubesException", "in use") { try s.removeLabel("teal") }
        assertDomainError("QubesException", "built in") { try s.removeLabel("red") }
        assertDomainError("QubesLabelNotFoundError") { try s.removeLabel("nope") }
        assertDomainError("QubesValueError", "already exists") { try s.createLabel("teal", color: "0x000000") }
        assertDomainError("QubesValueError", "0xRRGGBB") { try s.createLabel("x", color: "teal") }
        try s.setProperty("label", of: "work", to: "blue")
        try s.removeLabel("teal")
        XCTAssertNil(s.snapshot().allLabels.first { $0.name == "teal" })
        _ = dir
    }

    func testVolumeSettings() throws {
        let (s, _) = try populatedStore(self)
        XCTAssertEqual(try s.snapshot().revisionsToKeep(volume: "private", of: "work"), 1)
        try s.setRevisionsToKeep(volume: "private", of: "work", to: 3)
        XCTAssertEqual(try s.snapshot().revisionsToKeep(volume: "private", of: "work"), 3)
        assertDomainError("QubesValueError") { try s.setRevisionsToKeep(volume: "swap", of: "work", to: 1) }
        assertDomainError("QubesValueError") { try s.setRevisionsToKeep(volume: "private", of: "work", to: -1) }
    }
}

final class ChangeRecordTests: XCTestCase {
    func testRecordsInOrder() throws {
        let dir = makeTempDir(self)
        let s = try openStore(dir)
        let rec = Recorder()
        s.addObserver { rec.append($0) }
        try s.create("fedora", class: .templateVM, label: "black")
        try s.create("work", class: .appVM, label: "blue", template: "fedora", caller: "mgmt")
        try s.setProperty("memory", of: "work", to: "800")
        try s.resetProperty("memory", of: "work")
        try s.setFeature("service.x", of: "work", to: "1")
        try s.setFeature("service.x", of: "work", to: "2")
        try s.removeFeature("service.x", of: "work")
        try s.addTag("t1", to: "work")
        try s.removeTag("t1", from: "work")
        try s.setProperty("vmm", of: "fedora", to: "xen")       // moves work's isolation tag too
        try s.setGlobalProperty("default_netvm", to: "")
        try? s.setProperty("memory", of: "work", to: "-5")      // refused: no record
        try s.remove("work")
        let got = rec.all.map(\.description)
        XCTAssertEqual(got, [
            "#1 fedora domain-add vm=fedora",
            "#2 fedora domain-tag-add:isolation-native tag=isolation-native",
            "#3 work domain-add vm=work",
            "#4 work domain-tag-add:created-by-mgmt tag=created-by-mgmt",
            "#5 work domain-tag-add:isolation-native tag=isolation-native",
            "#6 work property-set:memory name=memory newvalue=800 oldvalue=400",
            "#7 work property-reset:memory name=memory oldvalue=800",
            "#8 work domain-feature-set:service.x feature=service.x value=1",
            "#9 work domain-feature-set:service.x feature=service.x value=2 oldvalue=1",
            "#10 work domain-feature-delete:service.x feature=service.x",
            "#11 work domain-tag-add:t1 tag=t1",
            "#12 work domain-tag-delete:t1 tag=t1",
            "#13 fedora property-set:vmm name=vmm newvalue=xen oldvalue=native",
            "#14 fedora domain-tag-delete:isolation-native tag=isolation-native",
            "#15 fedora domain-tag-add:isolation-xen tag=isolation-xen",
            "#16 work domain-tag-delete:isolation-native tag=isolation-native",
            "#17 work domain-tag-add:isolation-xen tag=isolation-xen",
            "#18 - property-set:default_netvm name=default_netvm newvalue= oldvalue=",
            "#19 work domain-delete vm=work",
        ])
    }

    func testObserverSeesNewStateAndCannotWrite() throws {
        let dir = makeTempDir(self)
        let s = try openStore(dir)
        let rec = Recorder()
        let errors = Recorder()
        s.addObserver { [s] records in
            // The committed state is visible to reads from the observer.
            if case .domainAdd = records[0].kind { XCTAssertTrue(s.snapshot().contains(records[0].domain!)) }
            do { try s.addTag("x", to: "dom0") } catch {
                errors.append([ChangeRecord(sequence: 0, domain: "\(error)", kind: .tagAdd("x"))])
            }
            rec.append(records)
        }
        try s.create("t", class: .templateVM, label: "red")
        XCTAssertEqual(errors.all.count, 1)
        XCTAssertTrue(errors.all[0].domain!.contains("inside a change observer"))
        XCTAssertEqual(try s.tags(of: "dom0"), [])
    }

    func testConcurrentWritersProduceGaplessOrderedRecords() throws {
        let dir = makeTempDir(self)
        let s = try openStore(dir)
        try s.create("fedora", class: .templateVM, label: "black")
        for i in 0..<4 { try s.create("w\(i)", class: .appVM, label: "red", template: "fedora") }
        let rec = Recorder()
        s.addObserver { rec.append($0) }
        DispatchQueueLite.concurrentPerform(iterations: 4) { i in
            for n in 0..<50 { try! s.setFeature("k", of: "w\(i)", to: "\(n)") }
        }
        let seqs = rec.all.map(\.sequence)
        XCTAssertEqual(seqs.count, 200)
        XCTAssertEqual(seqs, Array(seqs.first!..<(seqs.first! + 200)))
        // Per domain, values arrive in the order they were written.
        for i in 0..<4 {
            let vals = rec.all.filter { $0.domain == "w\(i)" }.compactMap { r -> String? in
                if case .featureSet(_, let v, _) = r.kind { return v } else { return nil }
            }
            XCTAssertEqual(vals, (0..<50).map(String.init))
        }
    }
}

/// Runs `body` on `iterations` threads (pthreads; no Dispatch/Foundation needed).
enum DispatchQueueLite {
    static func concurrentPerform(iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
        final class Box: @unchecked Sendable { let f: @Sendable (Int) -> Void; let i: Int; init(_ f: @escaping @Sendable (Int) -> Void, _ i: Int) { self.f = f; self.i = i } }
        var threads: [pthread_t] = []
        for i in 0..<iterations {
            var t = pthread_t()
            let box = Unmanaged.passRetained(Box(body, i)).toOpaque()
            pthread_create(&t, nil, { p in
                let b = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
                b.f(b.i)
                return nil
            }, box)
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
    }
}
