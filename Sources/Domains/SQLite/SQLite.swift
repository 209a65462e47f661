// A thin, safe wrapper over the SQLite C API: one connection, prepared
// statements with typed bind/column, transactions, and errors that carry the
// SQL and sqlite3_errmsg. No ORM: the store writes its SQL by hand.
//
// Not thread-safe by itself: the store keeps its one connection behind a Mutex.
import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A failed SQLite call: what was attempted, the SQL, SQLite's code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    public var code: Int32
    public var message: String
    public var sql: String?
    public var context: String

    public var description: String {
        var s = "sqlite: \(context): \(message) (code \(code))"
        if let sql { s += " in: \(sql)" }
        return s
    }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case text(String)
}

public final class SQLiteConnection {
    fileprivate let db: OpaquePointer
    public let path: String
    /// Statements kept prepared for the connection's life, keyed by SQL text.
    private var cache: [String: Statement] = [:]

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: msg, sql: nil, context: "open \(path)")
        }
        db = handle
        self.path = path
        // The store is the host's alone (its directory may be passable by
        // QEMU's user); SQLite gives the journal files the same mode.
        _ = chmod(path, 0o600)
        sqlite3_extended_result_codes(db, 1)
        // Another process (a crashed daemon's leftover reader, the sqlite3 CLI)
        // may hold a lock briefly; wait rather than fail at once.
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        cache.removeAll()           // finalize statements before closing
        sqlite3_close_v2(db)
    }

    fileprivate func error(_ rc: Int32, _ context: String, sql: String?) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql, context: context)
    }

    /// Runs one or more statements without results (schema, pragmas).
    public func exec(_ sql: String) throws(SQLiteError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg, sql: sql, context: "exec")
        }
    }

    /// A prepared statement, cached by its SQL text and reset before reuse.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        if let s = cache[sql] {
            s.reset()
            return s
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, "prepare", sql: sql) }
        let s = Statement(connection: self, stmt: stmt, sql: sql)
        cache[sql] = s
        return s
    }

    /// Prepares, binds and runs a statement that returns no rows.
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) {
        let s = try prepare(sql)
        try s.bind(values)
        while try s.step() {}
        s.reset()
    }

    /// Prepares, binds and collects every row through `row`.
    public func query<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) -> T) throws(SQLiteError) -> [T] {
        let s = try prepare(sql)
        try s.bind(values)
        var out: [T] = []
        while try s.step() { out.append(row(s)) }
        s.reset()
        return out
    }

    /// The first column of the first row as an integer (pragmas, counts).
    public func scalarInt(_ sql: String) throws(SQLiteError) -> Int64? {
        try query(sql) { $0.int(0) }.first
    }

    public func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        try query(sql) { $0.text(0) }.first
    }

    /// Runs `body` in one IMMEDIATE transaction: committed if it returns,
    /// rolled back if it throws. Nothing half-done is ever visible.
    public func transaction<T, E: Error>(_ body: () throws(E) -> T) throws -> T {
        try exec("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            // A failed COMMIT may already have rolled back; ignore that error.
            _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    public var changes: Int { Int(sqlite3_changes(db)) }
}

/// A prepared statement. Bind indices are 1-based (SQLite's), columns 0-based.
public final class Statement {
    private unowned let connection: SQLiteConnection
    private let stmt: OpaquePointer
    public let sql: String

    fileprivate init(connection: SQLiteConnection, stmt: OpaquePointer, sql: String) {
        self.connection = connection
        self.stmt = stmt
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    public func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    public func bind(_ values: [SQLValue]) throws(SQLiteError) {
        let expected = Int(sqlite3_bind_parameter_count(stmt))
        guard values.count == expected else {
            throw SQLiteError(code: SQLITE_RANGE, message: "\(values.count) values for \(expected) parameters",
                              sql: sql, context: "bind")
        }
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let n): rc = sqlite3_bind_int64(stmt, idx, n)
            case .text(let t): rc = sqlite3_bind_text(stmt, idx, t, -1, csqlite_transient())
            }
            guard rc == SQLITE_OK else { throw connection.error(rc, "bind #\(idx)", sql: sql) }
        }
    }

    /// Advances; true while a row is available.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let e = connection.error(rc, "step", sql: sql)
            sqlite3_reset(stmt)
            throw e
        }
    }

    public func isNull(_ col: Int32) -> Bool { sqlite3_column_type(stmt, col) == SQLITE_NULL }
    public func int(_ col: Int32) -> Int64 { sqlite3_column_int64(stmt, col) }
    public func text(_ col: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, col) else { return "" }
        return String(cString: p)
    }
    public func optionalText(_ col: Int32) -> String? { isNull(col) ? nil : text(col) }
}
