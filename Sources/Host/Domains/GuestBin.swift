// The agent's binaries as one directory every domain sees at /.odyssey/bin:
// <state_dir>/guest-bin holds hard links (a copy across filesystems) of
// odyssey-agent, ody-call and ody from beside agent_path. A share is a
// directory, and the build directory holds far more than a domain should
// see; a link costs nothing and a rebuild is picked up at the next refresh.
#if canImport(Glibc)
import Glibc
#endif

public enum GuestBin {
    public static let pathInDomain = "/.odyssey/bin"
    static let programs = ["odyssey-agent", "ody-call", "ody"]

    public static func directory(stateDir: String) -> String { stateDir + "/guest-bin" }

    /// Makes the directory current: each program beside `agentPath` is
    /// linked in unless the same file already is. The agent must exist; the
    /// others are optional (a domain without them lacks only those commands).
    @discardableResult
    public static func refresh(stateDir: String, agentPath: String) throws(OdysseyError) -> String {
        let dir = directory(stateDir: stateDir)
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw Sys.error("mkdir \(dir)") }
        _ = chmod(dir, 0o755)
        let from = Path.dirname(agentPath)
        for name in programs {
            let src = name == "odyssey-agent" ? agentPath : Path.join(from, name)
            let dst = Path.join(dir, name)
            var s = stat(), d = stat()
            guard stat(src, &s) == 0 else {
                if name == "odyssey-agent" { throw OdysseyError(.notFound, "agent_path \(agentPath): no such file (build it: swift build)") }
                unlink(dst)
                continue
            }
            if stat(dst, &d) == 0, d.st_dev == s.st_dev, d.st_ino == s.st_ino { continue }
            let tmp = dst + ".new"
            unlink(tmp)
            if link(src, tmp) != 0 {
                try AddonView.copyFile(src, to: tmp, mode: 0o755)
            }
            if rename(tmp, dst) != 0 { let e = Sys.error("rename \(tmp)"); unlink(tmp); throw e }
        }
        return dir
    }
}
