// Template roots: from the host (hard links, in seconds) or from a rootfs
// directory or tarball.
//
// --from-host decision: the root is a real directory tree (vmm-native mounts
// it as the overlay's lower layer) built with hard links to the host's files
// (same file system) instead of copies: /usr is gigabytes, linking ~130k
// files takes about a second. Hard links share inodes with the host, which is
// safe only while nothing writes through them. An overlay never writes to its
// lower layer (writes copy up), so AppVMs and DispVMs are safe. A TemplateVM
// started with a persistent root *would* write the host's files, so a
// host-linked template is marked (`root.hostlinked`) and always started with
// root_mode=snapshot: its own root changes are discarded at stop, like an
// AppVM's; install software by re-creating it from an updated host, or build
// the template from a rootfs. Files on another file system (EXDEV) and
// setuid/setgid files are copied instead of linked. The host's package
// upgrades replace files by rename, so the template keeps the old version
// until it is re-created.
#if canImport(Glibc)
import Glibc
#endif

public struct TemplateReport: Sendable {
    public let name: String
    public var linked = 0
    public var copied = 0
    public var symlinks = 0
    public var directories = 0
    /// Paths left out, relative to the host root, with the rule's reason (first 1000).
    public var excluded: [(path: String, reason: String)] = []
    public var excludedCount = 0
    public var seconds = 0.0
}

public struct TemplateBuilder: Sendable {
    public let store: DomainStore
    public let volumes: VolumeManager

    public init(store: DomainStore, volumes: VolumeManager) {
        self.store = store
        self.volumes = volumes
    }

    // MARK: --from-host

    /// Creates TemplateVM `name` whose root is assembled from the host's system
    /// directories under `rules` (see HostTemplateRules). `hostRoot` is "/" except in tests.
    @discardableResult
    public func createFromHost(_ name: String, label: String = "black", rules: HostTemplateRules = .standard,
                               hostRoot: String = "/", caller: String? = nil) throws(DomainError) -> TemplateReport {
        let t0 = Self.now()
        try precheck(name, label: label)
        let staging = try volumes.makeStaging(name)
        var report = TemplateReport(name: name)
        do throws(DomainError) {
            let root = "\(staging)/root"
            try Self.assembleFromHost(hostRoot: hostRoot, into: root, rules: rules, report: &report)
            try FileOps.writeFile("\(staging)/root.hostlinked", "root shares inodes with the host: start with root_mode=snapshot\n")
            try install(staging, name: name, label: label, caller: caller, rootHostLinked: true)
        } catch {
            _ = try? FileOps.removeTree(staging)
            throw error
        }
        report.seconds = Self.now() - t0
        return report
    }

    /// Builds the tree (exposed for tests and `ody template create --dry-run`-like tools).
    public static func assembleFromHost(hostRoot: String, into root: String, rules: HostTemplateRules,
                                        report: inout TemplateReport) throws(DomainError) {
        guard mkdir(root, 0o755) == 0 else { throw FileOps.fail("mkdir", root) }
        var walker = Walker(rules: rules, report: report)
        let hostFD = open(hostRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard hostFD >= 0 else { throw FileOps.fail("open", hostRoot) }
        defer { close(hostFD) }
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw FileOps.fail("open", root) }
        defer { close(rootFD) }
        var st = stat()
        guard fstat(rootFD, &st) == 0 else { throw FileOps.fail("stat", root) }
        walker.skipInode = (UInt64(st.st_dev), UInt64(st.st_ino))
        // Hard links need one file system: refuse up front rather than copy gigabytes.
        for top in rules.include {
            var hst = stat()
            if fstatat(hostFD, top, &hst, AT_SYMLINK_NOFOLLOW) == 0, (hst.st_mode & S_IFMT) == S_IFDIR, hst.st_dev != st.st_dev {
                throw .storage("template from host: \(hostRoot == "/" ? "" : hostRoot)/\(top) is on another file system than "
                               + "\(root); the state dir must be on the same file system to hard-link it (or use --from-rootfs)")
            }
        }
        for top in rules.include {
            try walker.entry(srcDir: hostFD, dstDir: rootFD, name: top, relative: top)
        }
        for (dir, mode) in rules.emptyDirs {
            let p = "\(root)/\(dir)"
            if !FileOps.exists(p) {
                guard mkdir(p, mode_t(mode)) == 0 else { throw FileOps.fail("mkdir", p) }
                _ = chmod(p, mode_t(mode))
            }
        }
        for g in rules.generated {
            let p = "\(root)/\(g.path)"
            if FileOps.lstatOf(p) != nil { _ = unlink(p) }
            try FileOps.writeFile(p, g.content, mode: mode_t(g.mode))
        }
        report = walker.report
    }

    /// Recursive hard-link walk with the rules applied on the way.
    struct Walker {
        let rules: HostTemplateRules
        var report: TemplateReport
        var skipInode: (UInt64, UInt64)?
        /// Exclusions by their first path component (patterns starting with a glob go under "*").
        let byTop: [String: [HostTemplateRules.Exclusion]]

        init(rules: HostTemplateRules, report: TemplateReport) {
            self.rules = rules
            self.report = report
            var idx: [String: [HostTemplateRules.Exclusion]] = [:]
            for ex in rules.exclude {
                let top = String(ex.pattern.split(separator: "/", maxSplits: 1).first ?? "")
                idx[top.contains("*") || top.contains("?") || top.contains("[") ? "*" : top, default: []].append(ex)
            }
            byTop = idx
        }

        func exclusion(_ relative: String) -> HostTemplateRules.Exclusion? {
            let top = String(relative.split(separator: "/", maxSplits: 1).first ?? "")
            return ((byTop[top] ?? []) + (byTop["*"] ?? [])).first { fnmatchPath($0.pattern, relative) }
        }

        mutating func skip(_ relative: String, _ reason: String) {
            report.excludedCount += 1
            if report.excluded.count < 1000 { report.excluded.append((relative, reason)) }
        }

        mutating func entry(srcDir: Int32, dstDir: Int32, name: String, relative: String) throws(DomainError) {
            if let ex = exclusion(relative) { skip(relative, ex.reason); return }
            var st = stat()
            guard fstatat(srcDir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }
                throw FileOps.fail("stat", "/" + relative)
            }
            if let (dev, ino) = skipInode, UInt64(st.st_dev) == dev, UInt64(st.st_ino) == ino { return }
            let type = st.st_mode & S_IFMT
            let mode = st.st_mode & 0o7777
            switch type {
            case S_IFDIR:
                if rules.excludeNotWorldReadable, (mode & 0o005) != 0o005 { skip(relative, "directory not world-readable"); return }
                guard mkdirat(dstDir, name, 0o700) == 0 else { throw FileOps.fail("mkdir", relative) }
                let s = openat(srcDir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard s >= 0 else { throw FileOps.fail("open", "/" + relative) }
                defer { close(s) }
                let d = openat(dstDir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard d >= 0 else { throw FileOps.fail("open", relative) }
                defer { close(d) }
                report.directories += 1
                for child in try Self.names(s, relative) {
                    try entry(srcDir: s, dstDir: d, name: child, relative: "\(relative)/\(child)")
                }
                _ = fchown(d, st.st_uid, st.st_gid)
                _ = fchmod(d, mode & ~mode_t(0o6000))
            case S_IFREG:
                if rules.excludeNotWorldReadable, (mode & 0o004) == 0 { skip(relative, "file not world-readable"); return }
                if rules.dropSetID, (mode & 0o6000) != 0 {
                    try copyFile(srcDir, dstDir, name, relative, st)
                } else if linkat(srcDir, name, dstDir, name, 0) == 0 {
                    report.linked += 1
                } else if errno == EPERM, geteuid() != 0 {
                    // fs.protected_hardlinks: only root may link files it does not own.
                    throw FileOps.fail("link (template from host needs root)", "/" + relative)
                } else if errno == EXDEV || errno == EPERM || errno == EMLINK {
                    // A mount below /usr, an immutable file, a link-count limit: copy this one.
                    try copyFile(srcDir, dstDir, name, relative, st)
                } else {
                    throw FileOps.fail("link", "/" + relative)
                }
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(srcDir, name, &buf, 4096)
                guard n >= 0 else { throw FileOps.fail("readlink", "/" + relative) }
                buf[n] = 0
                guard symlinkat(buf, dstDir, name) == 0 else { throw FileOps.fail("symlink", relative) }
                _ = fchownat(dstDir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)
                report.symlinks += 1
            default:
                skip(relative, "special file (device, socket or fifo)")
            }
        }

        /// A private copy without setuid/setgid bits.
        mutating func copyFile(_ srcDir: Int32, _ dstDir: Int32, _ name: String, _ relative: String, _ st: stat) throws(DomainError) {
            let s = openat(srcDir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard s >= 0 else { throw FileOps.fail("open", "/" + relative) }
            defer { close(s) }
            let mode = st.st_mode & 0o777
            let d = openat(dstDir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            guard d >= 0 else { throw FileOps.fail("create", relative) }
            defer { close(d) }
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { read(s, $0.baseAddress!, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw FileOps.fail("read", "/" + relative) }
                if n == 0 { break }
                var off = 0
                while off < n {
                    let w = buf.withUnsafeBytes { write(d, $0.baseAddress! + off, n - off) }
                    if w < 0 { if errno == EINTR { continue }; throw FileOps.fail("write", relative) }
                    off += w
                }
            }
            _ = fchown(d, st.st_uid, st.st_gid)
            _ = fchmod(d, mode)
            report.copied += 1
        }

        static func names(_ fd: Int32, _ relative: String) throws(DomainError) -> [String] {
            let dup = dup(fd)
            guard dup >= 0, let d = fdopendir(dup) else { throw FileOps.fail("opendir", "/" + relative) }
            defer { closedir(d) }
            var out: [String] = []
            while let e = readdir(d) {
                let n = FileOps.entryName(e)
                if n != "." && n != ".." { out.append(n) }
            }
            return out
        }
    }

    /// Hard-links a whole tree (a StandaloneVM cloned from a host-linked template).
    static func linkTree(_ from: String, to: String) throws(DomainError) {
        let parent = to.split(separator: "/").dropLast().joined(separator: "/")
        let leaf = String(to.split(separator: "/").last ?? "")
        let src = from.split(separator: "/").dropLast().joined(separator: "/")
        let srcLeaf = String(from.split(separator: "/").last ?? "")
        let rules = HostTemplateRules(include: [srcLeaf], exclude: [], excludeNotWorldReadable: false, dropSetID: false,
                                      emptyDirs: [], generated: [])
        var walker = Walker(rules: rules, report: TemplateReport(name: leaf))
        let s = open("/" + src, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard s >= 0 else { throw FileOps.fail("open", from) }
        defer { close(s) }
        let d = open("/" + parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { throw FileOps.fail("open", to) }
        defer { close(d) }
        if leaf != srcLeaf {
            // Walker keeps names; link under the source's leaf name then rename.
            try walker.entry(srcDir: s, dstDir: d, name: srcLeaf, relative: srcLeaf)
            try FileOps.rename("/\(parent)/\(srcLeaf)", to)
        } else {
            try walker.entry(srcDir: s, dstDir: d, name: srcLeaf, relative: srcLeaf)
        }
    }

    // MARK: --from-rootfs

    /// Creates TemplateVM `name` from a root file system: a directory (copied
    /// with `cp -a --reflink=auto`) or a tarball (`tar`, compression detected).
    /// Tarball members with absolute names or `..` components are refused before
    /// anything is extracted.
    @discardableResult
    public func createFromRootfs(_ name: String, source: String, label: String = "black",
                                 caller: String? = nil) throws(DomainError) -> TemplateReport {
        let t0 = Self.now()
        try precheck(name, label: label)
        guard let st = statFollow(source) else {
            throw .storage("rootfs \(source): no such file or directory")
        }
        let isDir = (st.st_mode & S_IFMT) == S_IFDIR
        if !isDir { try Self.checkTarMembers(source) }
        let staging = try volumes.makeStaging(name)
        do throws(DomainError) {
            let root = "\(staging)/root"
            if isDir {
                try FileOps.copyTree(source.hasSuffix("/") ? String(source.dropLast()) : source, to: root)
            } else {
                try FileOps.makeDirectories(root)
                try Spawn.run(["tar", "-x", "--numeric-owner", "-f", source, "-C", root])
            }
            _ = chmod(root, 0o755)
            for (dir, mode) in HostTemplateRules.standard.emptyDirs where !FileOps.exists("\(root)/\(dir)") {
                if mkdir("\(root)/\(dir)", mode_t(mode)) == 0 { _ = chmod("\(root)/\(dir)", mode_t(mode)) }
            }
            try install(staging, name: name, label: label, caller: caller)
        } catch {
            _ = try? FileOps.removeTree(staging)
            throw error
        }
        var r = TemplateReport(name: name)
        r.seconds = Self.now() - t0
        return r
    }

    private func statFollow(_ p: String) -> stat? {
        var st = stat()
        return stat(p, &st) == 0 ? st : nil
    }

    /// Refuses a tarball with a member that would land outside the target.
    /// (GNU tar also refuses `..` members and delays symlinks that point
    /// outside the tree until everything is extracted, so a symlink member
    /// cannot redirect a later member; this check makes the refusal explicit
    /// and total rather than a skipped member.)
    public static func checkTarMembers(_ tarball: String) throws(DomainError) {
        let list = try Spawn.run(["tar", "-t", "-f", tarball])
        for member in list.stdout.split(separator: "\n", omittingEmptySubsequences: true) {
            let m = String(member)
            if m.hasPrefix("/") { throw .storage("rootfs \(tarball): member '\(m)' has an absolute name") }
            if m.split(separator: "/").contains("..") { throw .storage("rootfs \(tarball): member '\(m)' contains '..'") }
        }
    }

    // MARK: shared

    private func precheck(_ name: String, label: String) throws(DomainError) {
        try DomainName.validate(name)
        let s = store.snapshot()
        guard !s.contains(name) else { throw .value("domain '\(name)' already exists") }
        _ = try s.label(label)
        guard !FileOps.exists(volumes.domainDir(name)) else {
            throw .storage("\(volumes.domainDir(name)) exists but '\(name)' is not in the store (run recovery)")
        }
    }

    /// Moves the built volumes into place, then commits the domain. A crash
    /// in between leaves a directory the store does not know, which
    /// VolumeManager.recover removes at the next daemon start.
    private func install(_ staging: String, name: String, label: String, caller: String?,
                         rootHostLinked: Bool = false) throws(DomainError) {
        try volumes.commitStaging(staging, as: name)
        do {
            try store.create(name, class: .templateVM, label: label, caller: caller, rootHostLinked: rootHostLinked)
        } catch {
            _ = try? FileOps.removeTree(volumes.domainDir(name))
            throw error
        }
        // Its private image is made now (mke2fs), not at its first start.
        try volumes.withPrivateOpen(name) {}
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
