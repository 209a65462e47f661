// PID 1 of a domain (the agent) must be out of reach of the domain's own
// root: it holds the control channel to the host and the console log.
//
// Domain root has every capability over the domain's user namespace, and a
// process exec'd there is normally ptrace-able from it: /proc/1/mem,
// /proc/1/fd/*, ptrace and pidfd_getfd all pass the kernel's
// ptrace_may_access (seccomp refuses the last three as defence in depth, but
// cannot see what a path such as /proc/1/mem opens). The kernel's own
// answer is the executable's readability: exec'ing a file the caller cannot
// read marks the process non-dumpable and ties its memory to the nearest
// user namespace that is privileged over the file, here the host's
// (would_dump() in fs/exec.c). Access to it then needs CAP_SYS_PTRACE in
// the host's user namespace, which a domain never has.
//
// So when init comes from a host file bound into the domain (bind_ro, as the
// agent does), the jailer is given an execute-only copy of it instead
// (mode 0111, owned by host root, so domain root, an unmapped stranger to
// it, cannot read it). The copy is made once per version of the file, under
// <state_dir>/exec, and shared by every domain (one page cache).
//
// A template's own init (a file the domain's root owns) stays readable and
// so ptrace-able by domain root: only host-provided inits get this shield.
import Glibc

enum ExecOnlyInit {
    /// `bindRO` with the entry that provides `initPath` pointing at an
    /// execute-only copy; unchanged when init does not come from a host file.
    static func shield(bindRO: [String], initPath: String, stateDir: String) throws -> [String] {
        try bindRO.map { spec in
            guard let colon = spec.lastIndex(of: ":"), spec[spec.index(after: colon)...] == initPath else { return spec }
            let source = String(spec[..<colon])
            return try copy(of: source, into: "\(stateDir)/exec") + ":" + initPath
        }
    }

    /// The execute-only copy of `source` (made if missing), keyed by the
    /// source's identity and version so a rebuilt agent gets a fresh copy.
    static func copy(of source: String, into dir: String) throws -> String {
        let src = try Sys.check("open init \(source)") { open(source, O_RDONLY | O_CLOEXEC) }
        defer { close(src) }
        var st = stat()
        try Sys.check("stat init \(source)") { fstat(src, &st) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw NativeError.sys("init \(source) is not a regular file", EINVAL)
        }
        let base = source.split(separator: "/").last.map(String.init) ?? "init"
        let name = "\(base).\(st.st_dev)-\(st.st_ino)-\(st.st_size)-\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        let target = "\(dir)/\(name)"
        var have = stat()
        if lstat(target, &have) == 0, (have.st_mode & S_IFMT) == S_IFREG, have.st_mode & 0o777 == 0o111,
           have.st_uid == 0, have.st_size == st.st_size {
            return target
        }
        try Sys.mkdirs(dir, mode: 0o711)
        let tmp = "\(target).tmp.\(getpid()).\(Sys.monotonicNanos())"
        var out = try Sys.check("create \(tmp)") { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o700) }
        do {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw NativeError.sys("read init \(source)") }
                if n == 0 { break }
                var done = 0
                while done < n {
                    let w = buf.withUnsafeBytes { write(out, $0.baseAddress! + done, n - done) }
                    if w < 0 && errno == EINTR { continue }
                    if w < 0 { throw NativeError.sys("write \(tmp)") }
                    done += w
                }
            }
            try Sys.check("chmod \(tmp)") { fchmod(out, 0o111) }
            close(out)
            out = -1
            try Sys.check("rename \(tmp)") { rename(tmp, target) }
        } catch {
            if out >= 0 { close(out) }
            unlink(tmp)
            throw error
        }
        // Older copies of the same file are no longer needed (a running
        // domain keeps its own open, so removing the name is safe).
        for old in Sys.list(dir) where old.hasPrefix(base + ".") && old != name && !old.contains(".tmp.") {
            unlink("\(dir)/\(old)")
        }
        return target
    }
}
