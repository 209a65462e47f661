import XCTest
@testable import Domains
#if canImport(Glibc)
import Glibc
#endif

final class TemplateTests: XCTestCase {
    /// A fake host root with a secret for every rule, plus ordinary files.
    func fakeHost(_ dir: String) throws -> String {
        let h = dir + "/host"
        let files: [(String, String, mode_t)] = [
            ("usr/bin/tool", "#!/bin/sh\n", 0o755), ("usr/lib/libx.so", "lib", 0o644),
            ("usr/bin/su", "setuid", 0o4755), ("usr/lib/helper-only-group", "x", 0o4750),
            ("etc/os-release", "ID=debian\n", 0o644), ("etc/shadow", "root:$6$hash", 0o640), ("etc/gshadow", "x", 0o640),
            ("etc/passwd", "root:x:0:0::/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n", 0o644),
            ("etc/group", "alice:x:1001:\n", 0o644), ("etc/sudoers", "alice ALL=(ALL) ALL", 0o440),
            ("etc/sudoers.d/extra", "x", 0o440), ("etc/ssh/ssh_host_ed25519_key", "PRIVATE", 0o600),
            ("etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA", 0o644), ("etc/ssh/sshd_config", "Port 22\n", 0o644),
            ("etc/ssl/private/server.key", "KEY", 0o600), ("etc/ssl/certs/ca.pem", "CERT", 0o644),
            ("etc/machine-id", "0123456789abcdef", 0o444), ("etc/app/secret.conf", "token=1", 0o600),
            ("etc/app/group-secret.conf", "token=2", 0o640), ("etc/app/public.conf", "ok", 0o644),
            ("etc/NetworkManager/system-connections/wifi.nmconnection", "psk=x", 0o644),
            ("etc/wireguard/wg0.conf", "PrivateKey=x", 0o644), ("etc/odyssey/odyssey.toml", "x", 0o644),
            ("root/.bash_history", "secret commands", 0o600), ("home/alice/.ssh/id_rsa", "KEY", 0o600),
            ("var/lib/secret", "x", 0o644),
        ]
        for (p, c, m) in files {
            let full = "\(h)/\(p)"
            try FileOps.makeDirectories(String(full[..<full.lastIndex(of: "/")!]))
            try FileOps.writeFile(full, c, mode: m)
        }
        _ = chmod(h + "/etc/ssl/private", 0o700)
        _ = symlink("usr/bin", h + "/bin")
        _ = symlink("usr/lib", h + "/lib")
        _ = mkfifo(h + "/etc/a-fifo", 0o644)
        return h
    }

    func testHostRulesOnAFakeHost() throws {
        let dir = makeTempDir(self, "tpl")
        let host = try fakeHost(dir)
        var report = TemplateReport(name: "t")
        let root = dir + "/root"
        try TemplateBuilder.assembleFromHost(hostRoot: host, into: root, rules: .standard, report: &report)
        for secret in ["etc/shadow", "etc/gshadow", "etc/sudoers", "etc/sudoers.d", "etc/ssh/ssh_host_ed25519_key",
                       "etc/ssh/ssh_host_ed25519_key.pub", "etc/ssl/private", "etc/machine-id", "etc/app/secret.conf",
                       "etc/app/group-secret.conf", "etc/NetworkManager/system-connections", "etc/wireguard",
                       "etc/odyssey", "etc/a-fifo", "usr/lib/helper-only-group"] {
            XCTAssertFalse(FileOps.exists("\(root)/\(secret)"), "\(secret) must not be in the template")
        }
        for kept in ["usr/bin/tool", "usr/lib/libx.so", "etc/os-release", "etc/ssh/sshd_config", "etc/ssl/certs/ca.pem",
                     "etc/app/public.conf"] {
            XCTAssertTrue(FileOps.exists("\(root)/\(kept)"), "\(kept) is expected in the template")
        }
        // Ordinary files are hard links (no copy); setuid files are private copies without the bit.
        XCTAssertEqual(FileOps.lstatOf("\(root)/usr/bin/tool")!.st_ino, FileOps.lstatOf("\(host)/usr/bin/tool")!.st_ino)
        let su = FileOps.lstatOf("\(root)/usr/bin/su")!
        XCTAssertNotEqual(su.st_ino, FileOps.lstatOf("\(host)/usr/bin/su")!.st_ino)
        XCTAssertEqual(su.st_mode & 0o7777, 0o755)
        XCTAssertEqual(FileOps.lstatOf("\(host)/usr/bin/su")!.st_mode & 0o7777, 0o4755, "the host file is untouched")
        // Symlinks stay symlinks.
        XCTAssertEqual(FileOps.lstatOf("\(root)/bin")!.st_mode & S_IFMT, S_IFLNK)
        // Generated accounts: root and user (1000) only.
        let passwd = try FileOps.readFile("\(root)/etc/passwd")
        XCTAssertTrue(passwd.contains("user:x:1000:1000:"))
        XCTAssertFalse(passwd.contains("alice"))
        XCTAssertFalse(try FileOps.readFile("\(root)/etc/group").contains("alice"))
        // Empty mount points.
        for (d, mode) in [("home", 0o755), ("root", 0o700), ("tmp", 0o1777), ("var", 0o755), ("run", 0o755), ("proc", 0o555),
                          ("sys", 0o555), ("dev", 0o755), ("rw", 0o755)] {
            XCTAssertTrue(FileOps.isDirectory("\(root)/\(d)"), d)
            XCTAssertEqual(FileOps.lstatOf("\(root)/\(d)")!.st_mode & 0o7777, mode_t(mode), d)
        }
        XCTAssertEqual(try FileOps.list("\(root)/home"), [])
        XCTAssertEqual(try FileOps.list("\(root)/root"), [])
        XCTAssertEqual(try FileOps.list("\(root)/var").sorted(), ["cache", "lib", "log", "tmp"])
        XCTAssertTrue(report.excluded.contains { $0.path == "etc/shadow" })
        XCTAssertTrue(report.excluded.contains { $0.path == "etc/app/secret.conf" && $0.reason == "file not world-readable" })
    }

    func testHostLinkedTemplateThroughTheStore() throws {
        let dir = makeTempDir(self, "tpl2")
        let host = try fakeHost(dir)
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state")
        let b = TemplateBuilder(store: s, volumes: v)
        let rec = Recorder()
        s.addObserver { rec.append($0) }
        let report = try b.createFromHost("host-t", label: "gray", hostRoot: host, caller: "mgmt")
        XCTAssertGreaterThan(report.linked, 3)
        XCTAssertEqual(try s.domain("host-t").label.name, "gray")
        XCTAssertEqual(try s.tags(of: "host-t"), ["created-by-mgmt", "isolation-native"])
        XCTAssertEqual(rec.all.first?.eventName, "domain-add")
        XCTAssertTrue(v.rootIsHostLinked("host-t"))
        assertDomainError("QubesValueError", "already exists") { try b.createFromHost("host-t", hostRoot: host) }
        assertDomainError("QubesValueError", "reserved") { try b.createFromHost("default", hostRoot: host) }
        // A StandaloneVM cloned from it is linked too, and never writes through the links.
        try s.create("solo", class: .standaloneVM, label: "red")
        try v.createVolumes("solo", klass: .standaloneVM, cloneRootFrom: "host-t")
        XCTAssertTrue(v.rootIsHostLinked("solo"))
        XCTAssertEqual(FileOps.lstatOf(v.rootDir("solo") + "/usr/bin/tool")!.st_ino, FileOps.lstatOf(host + "/usr/bin/tool")!.st_ino)
        XCTAssertEqual(try v.prepareStart("solo", in: s.snapshot()).rootMode, .snapshot)
        try v.cleanupAfterStop("solo", in: s.snapshot())
        // The same linked root serves a VM (issue 12): mke2fs -d copies the content into
        // root.img, a snapshot there too; the host's files stay as they were.
        let vm = try v.prepareStart("solo", in: s.snapshot(), form: .image)
        XCTAssertEqual(vm.volume(.root)?.path, v.rootImage("solo"))
        XCTAssertEqual(vm.volume(.root)?.snapshot, true)
        XCTAssertEqual(try Spawn.run(["debugfs", "-R", "cat /usr/bin/tool", "--", v.rootImage("solo")]).stdout, "#!/bin/sh\n")
        try v.cleanupAfterStop("solo", in: s.snapshot())
        XCTAssertTrue(v.rootImageIsCurrent("solo"), "a host-linked root is never written: its image stays current")
        // Removing the template's volumes unlinks, never touches the host's files.
        try v.removeVolumes("solo")
        XCTAssertEqual(try FileOps.readFile(host + "/usr/bin/tool"), "#!/bin/sh\n")
        XCTAssertEqual(FileOps.lstatOf(host + "/usr/bin/tool")!.st_mode & 0o7777, 0o755)
    }

    /// Issue 11, finding 16: a --from-host template's root runs as a snapshot
    /// (it shares inodes with the host), so its changes are lost at stop:
    /// it must not claim `updateable=True`. A rootfs template's root persists.
    func testUpdateableOnlyWhereRootChangesPersist() throws {
        let dir = makeTempDir(self, "tpl3")
        let host = try fakeHost(dir)
        try FileOps.makeDirectories(dir + "/rootfs/usr/bin")
        try FileOps.writeFile(dir + "/rootfs/usr/bin/hello", "hi")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state")
        let b = TemplateBuilder(store: s, volumes: v)
        try b.createFromHost("host-t", hostRoot: host)
        try b.createFromRootfs("own-t", source: dir + "/rootfs")
        func updateable(_ d: String) throws -> String { try s.property("updateable", of: d).qubesGetLine }
        XCTAssertEqual(try v.prepareStart("host-t", in: s.snapshot()).rootMode, .snapshot)
        XCTAssertEqual(try updateable("host-t"), "default=True type=bool False")
        XCTAssertEqual(try v.prepareStart("own-t", in: s.snapshot()).rootMode, .persistent)
        XCTAssertEqual(try updateable("own-t"), "default=True type=bool True")
        // A StandaloneVM cloned from the host-linked one (as admin.vm.Create does it).
        try s.create("solo", class: .standaloneVM, label: "red", rootHostLinked: v.rootIsHostLinked("host-t"))
        try v.createVolumes("solo", klass: .standaloneVM, cloneRootFrom: "host-t")
        XCTAssertEqual(try updateable("solo"), "default=True type=bool False")
        // The mark is no property anyone can list, set or reset.
        XCTAssertFalse(try s.snapshot().allProperties(of: "host-t").contains { $0.name.hasPrefix(".") })
        XCTAssertThrowsError(try s.setProperty(PropertyTable.rootHostLinkedKey, of: "host-t", to: ""))
        XCTAssertThrowsError(try s.resetProperty(PropertyTable.rootHostLinkedKey, of: "host-t"))
    }

    /// The real thing, from this host's /: fast, and no secret gets in.
    func testTemplateFromThisHost() throws {
        try XCTSkipIf(geteuid() != 0, "linking the host's files needs root (fs.protected_hardlinks)")
        var dir = makeTempDir(self, "host")
        if FileOps.lstatOf(dir)!.st_dev != FileOps.lstatOf("/usr")!.st_dev {
            // /tmp is a tmpfs here: build next to the host's files instead.
            dir = "/var/tmp/odyssey-host-template-\(getpid())"
            try FileOps.makeDirectories(dir)
            addTeardownBlock { [dir] in _ = try? FileOps.removeTree(dir) }
            try XCTSkipIf(FileOps.lstatOf(dir)!.st_dev != FileOps.lstatOf("/usr")!.st_dev, "no writable dir on /usr's file system")
        }
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state")
        let report = try TemplateBuilder(store: s, volumes: v).createFromHost("debian-host")
        print("template-from-host: \(report.seconds) s, \(report.linked) linked, \(report.copied) copied, "
              + "\(report.symlinks) symlinks, \(report.directories) dirs, \(report.excludedCount) excluded")
        let root = v.rootDir("debian-host")
        XCTAssertEqual(try s.domain("debian-host").klass, .templateVM)
        XCTAssertTrue(v.rootIsHostLinked("debian-host"))
        XCTAssertFalse(FileOps.exists(root + "/etc/shadow"))
        XCTAssertFalse(FileOps.exists(root + "/etc/gshadow"))
        XCTAssertFalse(FileOps.exists(root + "/etc/sudoers"))
        XCTAssertFalse(FileOps.exists(root + "/etc/machine-id"))
        XCTAssertEqual(try FileOps.list(root + "/root"), [])
        XCTAssertEqual(try FileOps.list(root + "/home"), [])
        XCTAssertTrue(FileOps.exists(root + "/usr/bin/env") || FileOps.exists(root + "/bin/env"))
        // Nothing in the result is unreadable to others, nothing matches an exclusion, no setuid bit.
        var offenders: [String] = []
        func walk(_ rel: String) {
            let p = rel.isEmpty ? root : "\(root)/\(rel)"
            guard let st = FileOps.lstatOf(p) else { return }
            let type = st.st_mode & S_IFMT
            if !rel.isEmpty, HostTemplateRules.standard.exclusion(for: rel) != nil,
               !HostTemplateRules.standard.generated.contains(where: { $0.path == rel }),
               !HostTemplateRules.standard.emptyDirs.contains(where: { $0.0 == rel }) { offenders.append(rel) }
            if type == S_IFREG, (st.st_mode & 0o004) == 0 || (st.st_mode & 0o6000) != 0 { offenders.append(rel) }
            if type == S_IFDIR, let names = try? FileOps.list(p) {
                for n in names { walk(rel.isEmpty ? n : "\(rel)/\(n)") }
            }
        }
        walk("etc")
        XCTAssertEqual(offenders, [])
        // A host-linked TemplateVM starts with a snapshot root (never writes the host's inodes).
        XCTAssertEqual(try v.prepareStart("debian-host", in: s.snapshot()).rootMode, .snapshot)
        XCTAssertLessThan(report.seconds, 30)
    }

    func testRootfsTarball() throws {
        let dir = makeTempDir(self, "tar")
        let s = try openStore(dir)
        let v = try VolumeManager(stateDir: dir + "/state")
        let b = TemplateBuilder(store: s, volumes: v)
        try FileOps.makeDirectories(dir + "/src/usr/bin")
        try FileOps.writeFile(dir + "/src/usr/bin/hello", "hi", mode: 0o755)
        try Spawn.run(["tar", "-czf", dir + "/good.tar.gz", "-C", dir + "/src", "."])
        try b.createFromRootfs("from-tar", source: dir + "/good.tar.gz")
        XCTAssertEqual(try FileOps.readFile(v.rootDir("from-tar") + "/usr/bin/hello"), "hi")
        XCTAssertTrue(FileOps.isDirectory(v.rootDir("from-tar") + "/proc"))
        XCTAssertEqual(try v.prepareStart("from-tar", in: s.snapshot()).rootMode, .persistent)

        // ../evil and /absolute members are refused before anything is extracted.
        try FileOps.makeDirectories(dir + "/x/sub")
        try FileOps.writeFile(dir + "/x/evil", "evil")
        try Spawn.run(["tar", "-cPf", dir + "/evil.tar", "-C", dir + "/x/sub", "../evil"])
        assertDomainError("StoragePoolException", "'../evil' contains '..'") { try b.createFromRootfs("evil", source: dir + "/evil.tar") }
        try Spawn.run(["tar", "-cPf", dir + "/abs.tar", dir + "/x/evil"])
        assertDomainError("StoragePoolException", "absolute name") { try b.createFromRootfs("evil", source: dir + "/abs.tar") }
        XCTAssertFalse(s.snapshot().contains("evil"))
        XCTAssertFalse(FileOps.exists(v.domainDir("evil")))
        XCTAssertEqual(try FileOps.list(dir + "/state/staging"), [], "nothing left behind")
        // Bad inputs.
        assertDomainError("StoragePoolException", "no such file") { try b.createFromRootfs("t2", source: dir + "/nope.tar") }
        assertDomainError("QubesValueError", "already exists") { try b.createFromRootfs("from-tar", source: dir + "/good.tar.gz") }
        try FileOps.writeFile(dir + "/garbage.tar", "not a tarball")
        assertDomainError("StoragePoolException", "tar") { try b.createFromRootfs("t3", source: dir + "/garbage.tar") }
    }
}
