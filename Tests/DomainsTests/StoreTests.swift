import XCTest
@testable import Domains

final class StoreTests: XCTestCase {
    func testDom0ExistsAlways() throws {
        let dir = makeTempDir(self)
        let s = try openStore(dir)
        let d = try s.domain("dom0")
        XCTAssertEqual(d.klass, .adminVM)
        XCTAssertEqual(d.uuid.text, "00000000-0000-0000-0000-000000000000")
        XCTAssertEqual(d.qid, 0)
        XCTAssertEqual(d.label.name, "black")
        XCTAssertNil(d.vmm)
        assertDomainError("QubesValueError", "cannot be removed") { try s.remove("dom0") }
        assertDomainError("QubesValueError", "cannot be created") { try s.create("dom1", class: .adminVM, label: "red") }
        XCTAssertEqual(try s.integrityCheck(), "ok")
    }

    func testCreateListRemoveAndPersistence() throws {
        let dir = makeTempDir(self)
        do {
            let s = try openStore(dir)
            try s.create("fedora", class: .templateVM, label: "black")
            let w = try s.create("work", class: .appVM, label: "blue", template: "fedora")
            XCTAssertEqual(w.template, "fedora")
            XCTAssertEqual(w.qid, 1 + 1)
            XCTAssertEqual(w.vmm, "native")
            try s.create("solo", class: .standaloneVM, label: "green")
            assertDomainError("QubesValueError", "already exists") { try s.create("work", class: .appVM, label: "red", template: "fedora") }
            assertDomainError("QubesValueError", "longer than") { try s.create(String(repeating: "a", count: 32), class: .appVM, label: "red") }
            assertDomainError("QubesLabelNotFoundError", "pink") { try s.create("x", class: .appVM, label: "pink", template: "fedora") }
            assertDomainError("QubesPropertyValueError", "label is required") { try s.create("x", class: .appVM, label: nil, template: "fedora") }
            assertDomainError("QubesPropertyValueError", "not a TemplateVM") { try s.create("x", class: .appVM, label: "red", template: "work") }
            assertDomainError("QubesPropertyValueError", "no such domain") { try s.create("x", class: .appVM, label: "red", template: "nope") }
            assertDomainError("QubesPropertyValueError", "no default_template") { try s.create("x", class: .appVM, label: "red") }
            assertDomainError("QubesPropertyValueError", "has no template") { try s.create("x", class: .standaloneVM, label: "red", template: "fedora") }
            XCTAssertFalse(s.snapshot().contains("x"), "failed creations leave nothing")
            XCTAssertEqual(s.allDomains().map(\.name), ["dom0", "fedora", "solo", "work"])
            assertDomainError("QubesVMInUseError", "template of work") { try s.remove("fedora") }
            assertDomainError("QubesVMNotFoundError", "nope") { try s.remove("nope") }
        }
        // Reopen: everything committed is there, defaults still resolved.
        let s = try openStore(dir)
        XCTAssertEqual(s.allDomains().map(\.name), ["dom0", "fedora", "solo", "work"])
        XCTAssertEqual(try s.domain("work").label.name, "blue")
        try s.remove("work")
        try s.remove("fedora")
        XCTAssertEqual(s.allDomains().map(\.name), ["dom0", "solo"])
        // qid reuse: lowest free.
        XCTAssertEqual(try s.create("fedora2", class: .templateVM, label: "red").qid, 1)
    }

    func testDefaultTemplateUsedWhenNoneGiven() throws {
        let (s, _) = try populatedStore(self)
        assertDomainError("QubesPropertyValueError", "not a TemplateVM") { try s.setGlobalProperty("default_template", to: "work") }
        try s.setGlobalProperty("default_template", to: "fedora")
        XCTAssertEqual(try s.create("mail", class: .appVM, label: "red").template, "fedora")
        XCTAssertEqual(try s.globalProperty("default_template").qubesGetLine, "default=False type=vm fedora")
        assertDomainError("QubesVMInUseError", "global default_template") {
            try s.remove("mail"); try s.remove("work"); try s.remove("fedora")
        }
    }

    func testSecondOpenIsRefused() throws {
        let dir = makeTempDir(self)
        let s = try openStore(dir)
        _ = s
        // flock is per open file description: a second open in the same process conflicts too.
        assertDomainError("StoragePoolException", "already opened") { try openStore(dir) }
    }

    func testSchemaVersionAndPragmas() throws {
        let dir = makeTempDir(self)
        _ = try openStore(dir)
        let db = try SQLiteConnection(path: dir + "/domains.db")
        XCTAssertEqual(try db.scalarInt("PRAGMA user_version"), Int64(Schema.latest))
        XCTAssertEqual(try db.scalarText("PRAGMA journal_mode"), "wal")
        try db.exec("PRAGMA user_version = 99")
        assertDomainError("QubesException", "newer") { try Schema.migrate(db) }
    }

    func testSQLiteErrorsCarrySQL() throws {
        let dir = makeTempDir(self)
        let db = try SQLiteConnection(path: dir + "/t.db")
        XCTAssertThrowsError(try db.exec("SELEKT 1")) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("SELEKT 1") && s.contains("syntax error"), s)
        }
        try db.exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
        try db.run("INSERT INTO t (a, b) VALUES (?, ?)", [.int(1), .text("x")])
        XCTAssertThrowsError(try db.run("INSERT INTO t (a, b) VALUES (?, ?)", [.int(1), .text("y")])) { e in
            XCTAssertTrue("\(e)".contains("UNIQUE constraint failed"), "\(e)")
        }
        XCTAssertThrowsError(try db.run("INSERT INTO t (a, b) VALUES (?, ?)", [.int(2)])) { e in
            XCTAssertTrue("\(e)".contains("1 values for 2 parameters"), "\(e)")
        }
        // A failed transaction leaves nothing.
        XCTAssertThrowsError(try db.transaction { () throws(SQLiteError) in
            try db.run("INSERT INTO t (a, b) VALUES (?, ?)", [.int(5), .text("z")])
            try db.run("INSERT INTO t (a, b) VALUES (?, ?)", [.int(1), .text("dup")])
        })
        XCTAssertEqual(try db.scalarInt("SELECT count(*) FROM t"), 1)
    }
}
