// What the plugin keeps on disk, so a host that was SIGKILLed and restarted
// re-adopts running domains and cleans up dead ones:
//   <state_dir>/.lock                 flock: one instance per state_dir
//   <state_dir>/domains/<name>.def    definitions (written atomically)
//   <state_dir>/running/<name>.run    pid + /proc start time + where its run_dir is
//   <state_dir>/console/<name>.log    init's stdout/stderr, truncated each start
//   <state_dir>/run/<name>            default run_dir
//   <state_dir>/private/<name>        default private_dir
import Glibc
import PluginABI

struct RunRecord {
    var pid: Int32          // 0 while starting: the jailer has not answered yet
    var startTime: UInt64
    var runDir: String

    func encoded() -> [UInt8] {
        Array("pid=\(pid)\nstart_time=\(startTime)\nrun_dir=\(runDir)\n".utf8)
    }

    static func decode(_ text: String) -> RunRecord? {
        var f: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { f[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        guard let pid = Int32(f["pid"] ?? ""), let runDir = f["run_dir"] else { return nil }
        return RunRecord(pid: pid, startTime: UInt64(f["start_time"] ?? "") ?? 0, runDir: runDir)
    }
}

final class StateStore {
    let dir: String
    private var lockFd: Int32 = -1

    init(dir: String) throws {
        self.dir = dir
        for sub in ["", "/domains", "/running", "/console", "/run", "/private"] {
            try Sys.mkdirs(dir + sub, mode: 0o700)
        }
        lockFd = try Sys.check("open \(dir)/.lock") { open("\(dir)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        if flock(lockFd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(lockFd)
            throw NativeError(ODY_E_EXISTS, "native: state_dir \(dir) is in use by another vmm-native instance (flock: \(Sys.errnoName(e)))", errno: e)
        }
    }

    deinit { if lockFd >= 0 { close(lockFd) } }

    func definitionPath(_ name: String) -> String { "\(dir)/domains/\(name).def" }
    func runPath(_ name: String) -> String { "\(dir)/running/\(name).run" }
    func consolePath(_ name: String) -> String { "\(dir)/console/\(name).log" }

    func loadDefinitions() -> [Definition] {
        Sys.list("\(dir)/domains").filter { $0.hasSuffix(".def") }.compactMap {
            Sys.readBytes("\(dir)/domains/\($0)").flatMap(Definition.decode)
        }
    }

    func save(_ d: Definition) throws { try Sys.writeAtomic(definitionPath(d.name), d.encoded()) }

    func removeDefinition(_ name: String) throws {
        if unlink(definitionPath(name)) != 0 && errno != ENOENT { throw NativeError.sys("unlink \(definitionPath(name))") }
    }

    /// The console log and its rotation go with the definition: a destroyed
    /// disposable must leave nothing on the host, and a later domain of the
    /// same name must not read (or append to) its predecessor's console.
    func removeConsoleLogs(_ name: String) throws {
        for path in [consolePath(name), consolePath(name) + ".1"] where unlink(path) != 0 && errno != ENOENT {
            throw NativeError.sys("unlink \(path)")
        }
    }

    /// Names with a run record (running, or left behind by a crash).
    func runRecordNames() -> [String] {
        Sys.list("\(dir)/running").filter { $0.hasSuffix(".run") }.map { String($0.dropLast(4)) }
    }

    func runRecord(_ name: String) -> RunRecord? { Sys.readText(runPath(name)).flatMap(RunRecord.decode) }

    /// Run records need no fsync: they only matter while the machine is up
    /// (a reboot ends every domain), and a killed host loses no page cache.
    func saveRun(_ name: String, _ r: RunRecord) throws { try Sys.writeAtomic(runPath(name), r.encoded(), durable: false) }

    func removeRun(_ name: String) { unlink(runPath(name)) }
}
