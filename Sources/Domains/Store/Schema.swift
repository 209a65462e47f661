// The store's schema: versioned with PRAGMA user_version, one migration per
// version, each applied in its own transaction together with the version bump
// (so a crash mid-migration leaves the previous version intact).

enum Schema {
    /// Migrations in order; index i brings the schema from version i to i+1.
    static let migrations: [String] = [
        // 1: domains, properties, features, tags, labels, globals, volume settings.
        """
        CREATE TABLE domains (
            qid        INTEGER PRIMARY KEY,          -- Qubes qid; dom0 is 0
            uuid       TEXT NOT NULL UNIQUE,
            name       TEXT NOT NULL UNIQUE,
            class      TEXT NOT NULL CHECK (class IN ('AdminVM','TemplateVM','AppVM','StandaloneVM','DispVM'))
        );
        -- Explicitly set properties only; defaults are resolved by the code.
        -- vm-typed values hold the target's UUID ('' = None).
        CREATE TABLE properties (
            qid   INTEGER NOT NULL REFERENCES domains(qid) ON DELETE CASCADE,
            name  TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (qid, name)
        ) WITHOUT ROWID;
        CREATE TABLE features (
            qid   INTEGER NOT NULL REFERENCES domains(qid) ON DELETE CASCADE,
            key   TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (qid, key)
        ) WITHOUT ROWID;
        -- Stored tags; isolation-<vmm> is derived from the vmm property, never stored.
        CREATE TABLE tags (
            qid INTEGER NOT NULL REFERENCES domains(qid) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (qid, tag)
        ) WITHOUT ROWID;
        CREATE TABLE labels (
            idx   INTEGER PRIMARY KEY,
            name  TEXT NOT NULL UNIQUE,
            color TEXT NOT NULL
        );
        CREATE TABLE global_properties (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE volume_settings (
            qid               INTEGER NOT NULL REFERENCES domains(qid) ON DELETE CASCADE,
            volume            TEXT NOT NULL,
            revisions_to_keep INTEGER NOT NULL CHECK (revisions_to_keep >= 0),
            PRIMARY KEY (qid, volume)
        ) WITHOUT ROWID;
        INSERT INTO labels (idx, name, color) VALUES
            (1,'red','0xcc0000'), (2,'orange','0xf57900'), (3,'yellow','0xedd400'), (4,'green','0x73d216'),
            (5,'gray','0x555555'), (6,'blue','0x3465a4'), (7,'purple','0x75507b'), (8,'black','0x000000');
        INSERT INTO domains (qid, uuid, name, class) VALUES (0, '00000000-0000-0000-0000-000000000000', 'dom0', 'AdminVM');
        INSERT INTO properties (qid, name, value) VALUES (0, 'label', 'black');
        """,
    ]

    static var latest: Int { migrations.count }

    /// Brings the database to the latest version; refuses a newer one.
    static func migrate(_ db: SQLiteConnection) throws(DomainError) {
        do {
            let current = Int(try db.scalarInt("PRAGMA user_version") ?? 0)
            guard current <= latest else {
                throw DomainError.other("store \(db.path): schema version \(current) is newer than this Odyssey's (\(latest))")
            }
            for v in current..<latest {
                try db.transaction { () throws(SQLiteError) in
                    try db.exec(migrations[v])
                    try db.exec("PRAGMA user_version = \(v + 1)")
                }
            }
        } catch let e as DomainError {
            throw e
        } catch let e as SQLiteError {
            throw .database(e)
        } catch {
            throw .other("\(error)")
        }
    }

    /// Reads the whole committed state (done once at open).
    static func load(_ db: SQLiteConnection, defaultVmm: String) throws(SQLiteError) -> DomainsSnapshot {
        var byQid: [Int64: DomainRecord] = [:]
        for (qid, uuid, name, cls) in try db.query("SELECT qid, uuid, name, class FROM domains", [], {
            ($0.int(0), $0.text(1), $0.text(2), $0.text(3))
        }) {
            guard let u = DomainUUID(uuid), let k = DomainClass(qubesName: cls) else {
                throw SQLiteError(code: 0, message: "corrupt row: qid \(qid) uuid '\(uuid)' class '\(cls)'",
                                  sql: nil, context: "load domains")
            }
            byQid[qid] = DomainRecord(qid: Int(qid), uuid: u, name: name, klass: k, properties: [:], features: [:],
                                      storedTags: [], revisionsToKeep: [:])
        }
        for (qid, n, v) in try db.query("SELECT qid, name, value FROM properties", [], { ($0.int(0), $0.text(1), $0.text(2)) }) {
            byQid[qid]?.properties[n] = v
        }
        for (qid, k, v) in try db.query("SELECT qid, key, value FROM features", [], { ($0.int(0), $0.text(1), $0.text(2)) }) {
            byQid[qid]?.features[k] = v
        }
        for (qid, t) in try db.query("SELECT qid, tag FROM tags", [], { ($0.int(0), $0.text(1)) }) {
            byQid[qid]?.storedTags.insert(t)
        }
        for (qid, vol, n) in try db.query("SELECT qid, volume, revisions_to_keep FROM volume_settings", [], {
            ($0.int(0), $0.text(1), $0.int(2))
        }) {
            byQid[qid]?.revisionsToKeep[vol] = Int(n)
        }
        var labels: [String: Label] = [:]
        for l in try db.query("SELECT idx, name, color FROM labels", [], { Label(index: Int($0.int(0)), name: $0.text(1), color: $0.text(2)) }) {
            labels[l.name] = l
        }
        var globals: [String: String] = [:]
        for (n, v) in try db.query("SELECT name, value FROM global_properties", [], { ($0.text(0), $0.text(1)) }) {
            globals[n] = v
        }
        var domains: [String: DomainRecord] = [:]
        var names: [DomainUUID: String] = [:]
        for r in byQid.values {
            domains[r.name] = r
            names[r.uuid] = r.name
        }
        return DomainsSnapshot(domains: domains, nameByUUID: names, labels: labels, globals: globals, defaultVmm: defaultVmm)
    }
}
