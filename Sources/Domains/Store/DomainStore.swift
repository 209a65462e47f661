// The domain store: SQLite in WAL mode behind one Mutex for writes, an
// immutable in-memory snapshot of the committed state for reads, and ordered
// change records delivered to observers after each commit.
//
// Durability: journal_mode=WAL + synchronous=FULL. In WAL mode a commit is
// durable once its frames are in the WAL file; FULL also fsyncs the WAL at
// every commit, so a committed change survives power loss too, not only a
// SIGKILL of the daemon (NORMAL would survive SIGKILL but could lose the
// last commits on power loss). Config changes are admin operations, rare
// enough to pay one fsync each (measured in the tests' numbers).
//
// One process owns the store: open takes an exclusive flock on `<path>.lock`
// (released by the kernel if the daemon dies), so the cache can never go
// stale behind another writer's back.
import Synchronization
import CSQLite
#if canImport(Glibc)
import Glibc
#endif

public final class DomainStore: Sendable {
    public let path: String
    public let defaultVmm: String

    private struct Writer {
        let db: SQLiteConnection
        var sequence: UInt64 = 0
    }
    private typealias Observer = @Sendable ([ChangeRecord]) -> Void

    private let writer: Mutex<Writer>
    private let published: Mutex<DomainsSnapshot>
    private let observers = Mutex<(next: UInt64, list: [(UInt64, Observer)])>((1, []))
    /// The thread inside a write (0: none), to refuse writes from observers instead of deadlocking.
    private let writerThread = Atomic<UInt>(0)
    private let lockFD: Int32

    /// Opens or creates the store at `path` (a file; its directory must exist).
    /// `defaultVmm` is the host config's default isolation provider.
    public init(path: String, defaultVmm: String) throws(DomainError) {
        self.path = path
        self.defaultVmm = defaultVmm
        let fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .storage("store \(path).lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .storage("store \(path): already opened by another process (\(String(cString: strerror(e))))")
        }
        lockFD = fd
        do {
            let db = try SQLiteConnection(path: path)
            // WAL: readers never block the writer and a commit is one append.
            guard try db.scalarText("PRAGMA journal_mode=WAL")?.lowercased() == "wal" else {
                throw DomainError.storage("store \(path): the file system does not support WAL mode")
            }
            // Reads are served from memory, so SQLite's page cache only serves writes
            // and the load at open: 256 KiB instead of the default 2 MiB (odysseyd's idle bar).
            try db.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256")
            try Schema.migrate(db)
            // dom0 exists always: restore it if someone deleted it by hand.
            if try db.scalarInt("SELECT count(*) FROM domains WHERE qid = 0") == 0 {
                try db.transaction { () throws(SQLiteError) in
                    try db.run("INSERT INTO domains (qid, uuid, name, class) VALUES (0, ?, 'dom0', 'AdminVM')", [.text(DomainUUID.adminVM.text)])
                    try db.run("INSERT OR REPLACE INTO properties (qid, name, value) VALUES (0, 'label', 'black')")
                }
            }
            let state = try Schema.load(db, defaultVmm: defaultVmm)
            writer = Mutex(Writer(db: db))
            published = Mutex(state)
        } catch {
            Glibc.close(fd)
            switch error {
            case let e as DomainError: throw e
            case let e as SQLiteError: throw .database(e)
            default: throw .other("\(error)")
            }
        }
    }

    deinit { Glibc.close(lockFD) }

    // MARK: reads

    /// The committed state; cheap (a reference-counted copy), consistent across several reads.
    public func snapshot() -> DomainsSnapshot { published.withLock { $0 } }

    public func domain(_ name: String) throws(DomainError) -> DomainInfo { try snapshot().domain(name) }
    public func allDomains() -> [DomainInfo] { snapshot().allDomains() }
    public func property(_ prop: String, of name: String) throws(DomainError) -> PropertyValue {
        try snapshot().property(prop, of: name)
    }
    public func globalProperty(_ prop: String) throws(DomainError) -> PropertyValue { try snapshot().globalProperty(prop) }
    public func tags(of name: String) throws(DomainError) -> [String] { try snapshot().tags(of: name) }
    public func features(of name: String) throws(DomainError) -> [String: String] { try snapshot().features(of: name) }

    /// Runs SQLite's own consistency check (`PRAGMA integrity_check`); "ok" when sound.
    public func integrityCheck() throws(DomainError) -> String {
        try writer.withLock { (w) throws(DomainError) -> String in
            do throws(SQLiteError) { return try w.db.query("PRAGMA integrity_check", [], { $0.text(0) }).joined(separator: "\n") }
            catch { throw .database(error) }
        }
    }

    // MARK: observers

    /// `body` receives the records of every commit, in commit order, after the
    /// new state is visible to reads. It runs on the committing thread while
    /// the write lock is held (that is what keeps the order): it must be quick
    /// (enqueue, don't deliver) and must not write to the store.
    @discardableResult
    public func addObserver(_ body: @escaping @Sendable ([ChangeRecord]) -> Void) -> ObserverToken {
        observers.withLock { o in
            let id = o.next
            o.next += 1
            o.list.append((id, body))
            return ObserverToken(id: id)
        }
    }

    public func removeObserver(_ token: ObserverToken) {
        observers.withLock { o in o.list.removeAll { $0.0 == token.id } }
    }

    // MARK: the write path

    /// One write: a transaction over a copy of the state; commit, publish, notify.
    private func mutate<T: Sendable>(_ body: (inout Transaction) throws(DomainError) -> T) throws(DomainError) -> T {
        let me = UInt(bitPattern: Int(bitPattern: UInt(pthread_self())))
        if writerThread.load(ordering: .relaxed) == me {
            throw .other("the domain store cannot be changed from inside a change observer")
        }
        return try writer.withLock { (w) throws(DomainError) -> T in
            writerThread.store(me, ordering: .relaxed)
            defer { writerThread.store(0, ordering: .relaxed) }
            let before = published.withLock { $0 }
            var txn = Transaction(db: w.db, state: before)
            do throws(SQLiteError) { try w.db.exec("BEGIN IMMEDIATE") } catch { throw .database(error) }
            let result: T
            do throws(DomainError) {
                result = try body(&txn)
                try txn.state.checkInvariants()
                txn.recordAutomaticTagChanges(from: before)
                do throws(SQLiteError) { try w.db.exec("COMMIT") } catch { throw DomainError.database(error) }
            } catch {
                _ = try? w.db.exec("ROLLBACK")
                throw error
            }
            published.withLock { $0 = txn.state }
            guard !txn.changes.isEmpty else { return result }
            var records: [ChangeRecord] = []
            records.reserveCapacity(txn.changes.count)
            for (domain, kind) in txn.changes {
                w.sequence += 1
                records.append(ChangeRecord(sequence: w.sequence, domain: domain, kind: kind))
            }
            let list = observers.withLock { $0.list.map(\.1) }
            for o in list { o(records) }
            return result
        }
    }

    // MARK: domains

    /// Creates a domain. `label` is required except for a DispVM (default: its
    /// template's). `template`: AppVM (default: global default_template),
    /// DispVM (a disposable template). `caller` adds the tag `created-by-<caller>`.
    @discardableResult
    public func create(_ name: String, class klass: DomainClass, label: String?, template: String? = nil,
                       properties: [String: String] = [:], caller: String? = nil,
                       rootHostLinked: Bool = false) throws(DomainError) -> DomainInfo {
        let label = label ?? properties["label"]
        let template = template ?? properties["template"]
        try DomainName.validate(name)
        guard klass.creatable else { throw .value("a domain of class \(klass.rawValue) cannot be created (dom0 exists always)") }
        if let caller { try TagRules.validate(TagRules.createdByPrefix + caller) }
        return try mutate { (t) throws(DomainError) -> DomainInfo in
            guard t.state.domains[name] == nil else { throw .value("domain '\(name)' already exists") }
            try t.state.checkNotConfusable(name)
            let qid = (1...).first { q in !t.state.domains.values.contains { $0.qid == q } }!
            var r = DomainRecord(qid: qid, uuid: .random(), name: name, klass: klass, properties: [:], features: [:],
                                 storedTags: [], revisionsToKeep: [:])
            if rootHostLinked, klass.persistentRoot { r.properties[PropertyTable.rootHostLinkedKey] = "True" }
            if let label {
                r.properties["label"] = try t.state.parse(PropertyTable.definition("label", for: klass)!, label, for: r)
            } else if klass != .dispVM {
                throw .propertyValue(domain: name, property: "label", value: "", reason: "a label is required")
            }
            if klass.hasTemplate {
                var tname = template
                if tname == nil, klass == .appVM {
                    tname = t.state.present(t.state.globalRaw("default_template"), .vm)
                    if tname == "" { tname = nil }
                }
                guard let tname else {
                    throw .propertyValue(domain: name, property: "template", value: "",
                                         reason: klass == .appVM ? "no template given and no default_template set" : "a disposable template is required")
                }
                r.properties["template"] = try t.state.parse(PropertyTable.definition("template", for: klass)!, tname, for: r)
            } else if let template {
                throw .propertyValue(domain: name, property: "template", value: template, reason: "a \(klass.rawValue) has no template")
            }
            try t.insertDomain(r)
            t.changes.append((name, .domainAdd(klass)))
            for (k, v) in properties.sorted(by: { $0.key < $1.key }) where k != "label" && k != "template" {
                try t.setProperty(k, of: name, to: v, record: false)
            }
            if let caller { try t.addTag(TagRules.createdByPrefix + caller, to: name) }
            return t.state.info(t.state.domains[name]!)
        }
    }

    /// A new unnamed disposable (`dispNNNN`) from a disposable template; auto_cleanup=True.
    @discardableResult
    public func createDisposable(from dispTemplate: String, caller: String? = nil) throws(DomainError) -> DomainInfo {
        let taken = snapshot()
        var g = SystemRandomNumberGenerator()
        var name = ""
        for _ in 0..<1000 {
            name = "disp\(Int.random(in: 1...9999, using: &g))"
            // Free, and not confusable with a name someone made (`displO` would refuse `disp10`).
            if !taken.contains(name), (try? taken.checkNotConfusable(name)) != nil { break }
        }
        return try create(name, class: .dispVM, label: nil, template: dispTemplate,
                          properties: ["auto_cleanup": "True"], caller: caller)
    }

    /// Removes a domain. Refused for dom0 and for a domain others use (their
    /// template, netvm, default_dispvm, ... or a global property). The caller
    /// must have checked that it is halted (runtime state is not in the store).
    public func remove(_ name: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            guard r.klass != .adminVM else { throw .value("dom0 (the AdminVM) cannot be removed") }
            var users: [String] = []
            for o in t.state.domains.values.sorted(by: { $0.name < $1.name }) where o.name != name {
                for (p, v) in o.properties.sorted(by: { $0.key < $1.key }) where v == r.uuid.text
                    && PropertyTable.definition(p, for: o.klass)?.type == .vm {
                    users.append("\(p) of \(o.name)")
                }
            }
            for (p, v) in t.state.globals.sorted(by: { $0.key < $1.key }) where v == r.uuid.text { users.append("global \(p)") }
            guard users.isEmpty else { throw .vmInUse(domain: name, reason: users.joined(separator: ", ")) }
            try t.sql("DELETE FROM domains WHERE qid = ?", [.int(Int64(r.qid))])
            t.state.domains[name] = nil
            t.state.nameByUUID[r.uuid] = nil
            t.changes.append((name, .domainDelete(r.klass)))
        }
    }

    // MARK: properties

    public func setProperty(_ prop: String, of name: String, to value: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in try t.setProperty(prop, of: name, to: value, record: true) }
    }

    /// Back to the default. Refused for properties without one (label, template).
    public func resetProperty(_ prop: String, of name: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            guard let def = PropertyTable.definition(prop, for: r.klass) else { throw .noSuchProperty(domain: name, property: prop) }
            guard !def.readOnly else { throw .propertyAccess(domain: name, property: prop, reason: "read-only") }
            guard t.state.defaultRaw(def, r) != nil else {
                throw .propertyAccess(domain: name, property: prop, reason: "it has no default and cannot be reset")
            }
            guard r.properties[prop] != nil else { return }
            if prop == "provides_network" || prop == "template_for_dispvms" {
                _ = try t.state.parse(def, t.state.defaultRaw(def, r)!, for: r)   // same in-use checks as a set
            }
            let old = try t.state.property(prop, of: name).value
            try t.sql("DELETE FROM properties WHERE qid = ? AND name = ?", [.int(Int64(r.qid)), .text(prop)])
            t.state.domains[name]!.properties[prop] = nil
            t.changes.append((name, .propertyReset(name: prop, oldValue: old)))
        }
    }

    public func setGlobalProperty(_ prop: String, to value: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            guard let def = PropertyTable.globalByName[prop] else { throw .noSuchProperty(domain: nil, property: prop) }
            let raw = try t.state.parse(def, value, for: nil)
            let old = try t.state.globalProperty(prop).value
            try t.sql("INSERT OR REPLACE INTO global_properties (name, value) VALUES (?, ?)", [.text(prop), .text(raw)])
            t.state.globals[prop] = raw
            t.changes.append((nil, .propertySet(name: prop, newValue: t.state.present(raw, def.type), oldValue: old)))
        }
    }

    public func resetGlobalProperty(_ prop: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            guard PropertyTable.globalByName[prop] != nil else { throw .noSuchProperty(domain: nil, property: prop) }
            guard t.state.globals[prop] != nil else { return }
            let old = try t.state.globalProperty(prop).value
            try t.sql("DELETE FROM global_properties WHERE name = ?", [.text(prop)])
            t.state.globals[prop] = nil
            t.changes.append((nil, .propertyReset(name: prop, oldValue: old)))
        }
    }

    // MARK: features

    public func setFeature(_ key: String, of name: String, to value: String) throws(DomainError) {
        try FeatureRules.validate(key: key, value: value)
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            let old = r.features[key]
            try t.sql("INSERT OR REPLACE INTO features (qid, key, value) VALUES (?, ?, ?)", [.int(Int64(r.qid)), .text(key), .text(value)])
            t.state.domains[name]!.features[key] = value
            t.changes.append((name, .featureSet(key: key, value: value, oldValue: old)))
        }
    }

    public func removeFeature(_ key: String, of name: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            guard r.features[key] != nil else { throw .featureNotFound(domain: name, feature: key) }
            try t.sql("DELETE FROM features WHERE qid = ? AND key = ?", [.int(Int64(r.qid)), .text(key)])
            t.state.domains[name]!.features[key] = nil
            t.changes.append((name, .featureDelete(key: key)))
        }
    }

    // MARK: tags

    /// Adds a tag (no change if present). `caller` is the domain asking:
    /// `created-by-*` tags may only be changed by dom0; `isolation-*` never by hand.
    public func addTag(_ tag: String, to name: String, caller: String = "dom0") throws(DomainError) {
        try TagRules.validate(tag)
        // qubesd: adding a tag the domain has is a no-op, automatic ones included
        // (qvm-clone copies every tag of the source, isolation-* among them).
        if try snapshot().hasTag(tag, name) { return }
        try Self.checkManualTag(tag, caller: caller)
        try mutate { (t) throws(DomainError) in try t.addTag(tag, to: name) }
    }

    public func removeTag(_ tag: String, from name: String, caller: String = "dom0") throws(DomainError) {
        try TagRules.validate(tag)
        try Self.checkManualTag(tag, caller: caller)
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            guard r.storedTags.contains(tag) else { throw .tagNotFound(domain: name, tag: tag) }
            try t.sql("DELETE FROM tags WHERE qid = ? AND tag = ?", [.int(Int64(r.qid)), .text(tag)])
            t.state.domains[name]!.storedTags.remove(tag)
            t.changes.append((name, .tagDelete(tag)))
        }
    }

    static func checkManualTag(_ tag: String, caller: String) throws(DomainError) {
        if tag.hasPrefix(TagRules.isolationPrefix) {
            throw .automaticTag(tag)
        }
        if tag.hasPrefix(TagRules.createdByPrefix), caller != "dom0" {
            throw .permissionDenied("tag '\(tag)' can only be changed by the admin domain")
        }
    }

    // MARK: labels

    /// A custom label with the next free index.
    @discardableResult
    public func createLabel(_ name: String, color: String) throws(DomainError) -> Label {
        try Label.validate(name: name, color: color)
        return try mutate { (t) throws(DomainError) -> Label in
            guard t.state.labels[name] == nil else { throw .value("label '\(name)' already exists") }
            let l = Label(index: (t.state.labels.values.map(\.index).max() ?? 0) + 1, name: name, color: color.lowercased())
            try t.sql("INSERT INTO labels (idx, name, color) VALUES (?, ?, ?)", [.int(Int64(l.index)), .text(l.name), .text(l.color)])
            t.state.labels[name] = l
            t.changes.append((nil, .labelAdd(name)))
            return l
        }
    }

    public func removeLabel(_ name: String) throws(DomainError) {
        try mutate { (t) throws(DomainError) in
            let l = try t.state.label(name)
            guard !l.isBuiltin else { throw .other("label '\(name)' is built in and cannot be removed") }
            let users = t.state.domains.values.filter { $0.properties["label"] == name }.map(\.name).sorted()
            guard users.isEmpty else { throw .other("label '\(name)' is still in use by \(users.joined(separator: ", "))") }
            try t.sql("DELETE FROM labels WHERE idx = ?", [.int(Int64(l.index))])
            t.state.labels[name] = nil
            t.changes.append((nil, .labelRemove(name)))
        }
    }

    // MARK: volumes

    public static let volumeNames = ["root", "private", "volatile"]

    /// `revisions_to_keep` of one volume (admin.vm.volume.Set.revisions_to_keep).
    public func setRevisionsToKeep(volume: String, of name: String, to n: Int) throws(DomainError) {
        guard Self.volumeNames.contains(volume) else { throw .value("\(name): no volume '\(volume)'") }
        guard n >= 0, n <= 100 else { throw .value("\(name):\(volume): revisions_to_keep must be 0 to 100, not \(n)") }
        try mutate { (t) throws(DomainError) in
            let r = try t.state.record(name)
            try t.sql("INSERT OR REPLACE INTO volume_settings (qid, volume, revisions_to_keep) VALUES (?, ?, ?)",
                      [.int(Int64(r.qid)), .text(volume), .int(Int64(n))])
            t.state.domains[name]!.revisionsToKeep[volume] = n
        }
    }
}

/// One write in progress: the SQL connection inside BEGIN, the state being
/// built, and the change records so far.
struct Transaction {
    let db: SQLiteConnection
    var state: DomainsSnapshot
    var changes: [(String?, ChangeRecord.Kind)] = []

    func sql(_ text: String, _ values: [SQLValue] = []) throws(DomainError) {
        do { try db.run(text, values) } catch { throw .database(error) }
    }

    mutating func insertDomain(_ r: DomainRecord) throws(DomainError) {
        try sql("INSERT INTO domains (qid, uuid, name, class) VALUES (?, ?, ?, ?)",
                [.int(Int64(r.qid)), .text(r.uuid.text), .text(r.name), .text(r.klass.rawValue)])
        for (k, v) in r.properties {
            try sql("INSERT INTO properties (qid, name, value) VALUES (?, ?, ?)", [.int(Int64(r.qid)), .text(k), .text(v)])
        }
        state.domains[r.name] = r
        state.nameByUUID[r.uuid] = r.name
    }

    mutating func setProperty(_ prop: String, of name: String, to value: String, record: Bool) throws(DomainError) {
        let r = try state.record(name)
        guard let def = PropertyTable.definition(prop, for: r.klass) else { throw .noSuchProperty(domain: name, property: prop) }
        let raw = try state.parse(def, value, for: r)
        let old = try? state.property(prop, of: name).value
        try sql("INSERT OR REPLACE INTO properties (qid, name, value) VALUES (?, ?, ?)", [.int(Int64(r.qid)), .text(prop), .text(raw)])
        state.domains[name]!.properties[prop] = raw
        if record { changes.append((name, .propertySet(name: prop, newValue: state.present(raw, def.type), oldValue: old))) }
    }

    mutating func addTag(_ tag: String, to name: String) throws(DomainError) {
        let r = try state.record(name)
        guard !r.storedTags.contains(tag) else { return }
        try sql("INSERT INTO tags (qid, tag) VALUES (?, ?)", [.int(Int64(r.qid)), .text(tag)])
        state.domains[name]!.storedTags.insert(tag)
        changes.append((name, .tagAdd(tag)))
    }

    /// The automatic isolation-* tags follow the effective vmm (which a
    /// template or global change can move for many domains): record the
    /// difference as tag events after the change that caused it.
    mutating func recordAutomaticTagChanges(from before: DomainsSnapshot) {
        for name in state.domains.keys.sorted() {
            let r = state.domains[name]!
            let new = state.automaticTags(r)
            let old = before.domains[name].map { before.automaticTags($0) } ?? []
            guard new != old else { continue }
            for tag in old.subtracting(new).sorted() where !r.storedTags.contains(tag) { changes.append((name, .tagDelete(tag))) }
            for tag in new.subtracting(old).sorted() where !r.storedTags.contains(tag) { changes.append((name, .tagAdd(tag))) }
        }
    }
}
