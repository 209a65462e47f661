// The private volume's owners on disk are the guest's own ids (0..65535),
// whichever provider ran the domain: vmm-native maps them with an idmapped
// mount, and shifts a volume written under the old convention (uid_base+k on
// disk) once. Real domains in namespaces; the host stats the private dir
// while the domain is halted.
import Foundation
import PluginABI
import XCTest

final class PrivateOwnershipTests: NativeTestCase {
    /// An explicit base, so the old-convention tree below can be written
    /// with the ids this domain's range would have put there.
    let base: UInt32 = 3_000_000

    func owner(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0, "lstat \(path)", file: file, line: line)
        return "\(st.st_uid):\(st.st_gid)"
    }

    /// A file `user` makes in /home is 1000 on disk and `user`'s in the
    /// domain, at its next start too; /rw and /rw/home are the guest's root's.
    func testUserFilesHoldGuestIdsOnDisk() throws {
        let script = """
        r=/rw/result
        mkdir -p /home/user && chown 1000:1000 /home/user
        su -s /bin/sh user -c 'echo mine > /home/user/notes; id -u' > /rw/who 2>&1
        echo "who=$(cat /rw/who)" > $r
        echo "inside=$(stat -c %U:%u:%g /home/user/notes)" >> $r
        echo "home=$(stat -c %u:%g /home)" >> $r
        """
        let r = try runScript("own", script, extra: ["uid_base": "\(base)"])
        XCTAssertEqual(r["who"], "1000", "su to user: \(r)")
        XCTAssertEqual(r["inside"], "user:1000:1000")
        XCTAssertEqual(r["home"], "0:0")
        let p = privateDir("own")
        XCTAssertEqual(owner(p + "/home/user/notes"), "1000:1000", "the guest's uid on disk, not uid_base+1000")
        XCTAssertEqual(owner(p + "/home/user"), "1000:1000")
        XCTAssertEqual(owner(p + "/home"), "0:0", "/rw/home made by the jailer is the guest root's")
        XCTAssertEqual(owner(p), "0:0")
        XCTAssertEqual(owner(p + "/result"), "0:0", "written by the domain's root")

        // Next start: still user's inside, and user can still write it.
        try FileManager.default.removeItem(atPath: p + "/result")
        try vmm.undefine("own")
        let again = try runScript("own", """
        su -s /bin/sh user -c 'echo more >> /home/user/notes' && echo write=ok > /rw/result || echo write=denied > /rw/result
        echo "inside=$(stat -c %U /home/user/notes)" >> /rw/result
        """, extra: ["uid_base": "\(base)"], occurrence: 2)
        XCTAssertEqual(again["write"], "ok")
        XCTAssertEqual(again["inside"], "user")
        XCTAssertEqual(Fixtures.read(p + "/home/user/notes"), "mine\nmore\n")
    }

    /// A volume written under the old convention (uid_base+k on disk) is
    /// shifted to guest ids at its next start: deep trees too, set-user-ID
    /// kept; ids outside the range stay and are logged once; a symlink the
    /// domain planted pointing at a host file is re-owned itself, never
    /// followed. The shift happens once: the top directory marks it done.
    func testOldConventionVolumeIsShiftedOnceWithoutFollowingSymlinks() throws {
        let p = privateDir("old"), fm = FileManager.default
        let hostFile = dir + "/host-file"
        try "host data\n".write(toFile: hostFile, atomically: true, encoding: .utf8)
        XCTAssertEqual(chown(hostFile, base + 1000, base + 1000), 0)

        var dirs = [p + "/home/user"]
        for i in 0..<64 { dirs.append(dirs.last! + "/d\(i)") }
        let deep = dirs.last!
        try fm.createDirectory(atPath: deep, withIntermediateDirectories: true)
        try "deep\n".write(toFile: deep + "/leaf", atomically: true, encoding: .utf8)
        try "tool\n".write(toFile: p + "/home/user/tool", atomically: true, encoding: .utf8)
        try "foreign\n".write(toFile: p + "/foreign", atomically: true, encoding: .utf8)
        try "root's\n".write(toFile: p + "/rootfile", atomically: true, encoding: .utf8)
        XCTAssertEqual(symlink(hostFile, p + "/hostlink"), 0)
        // Owners as the old jailer and domain left them: base+k.
        for d in dirs { XCTAssertEqual(lchown(d, base + 1000, base + 1000), 0) }
        XCTAssertEqual(lchown(deep + "/leaf", base + 1000, base + 1000), 0)
        XCTAssertEqual(lchown(p + "/home/user/tool", base + 1000, base + 1000), 0)
        XCTAssertEqual(chmod(p + "/home/user/tool", 0o4755), 0)
        XCTAssertEqual(link(p + "/home/user/tool", p + "/home/user/d0/tool-link"), 0, "a hard link: seen twice, shifted once")
        XCTAssertEqual(lchown(p + "/hostlink", base + 1000, base + 1000), 0)
        XCTAssertEqual(lchown(p + "/foreign", 500_000, 500_000), 0)
        XCTAssertEqual(lchown(p + "/home", base, base), 0)
        XCTAssertEqual(lchown(p, base, base), 0)

        let r = try runScript("old", """
        r=/rw/result
        echo "leaf=$(stat -c %U:%u:%g /home/user/\((0..<64).map { "d\($0)" }.joined(separator: "/"))/leaf)" > $r
        su -s /bin/sh user -c 'echo x > /home/user/d0/new' && echo user_write=ok >> $r || echo user_write=denied >> $r
        """, extra: ["uid_base": "\(base)"])
        XCTAssertEqual(r["leaf"], "user:1000:1000", "\(r)")
        XCTAssertEqual(r["user_write"], "ok")

        XCTAssertEqual(owner(p), "0:0")
        XCTAssertEqual(owner(p + "/home"), "0:0")
        XCTAssertEqual(owner(p + "/home/user"), "1000:1000")
        XCTAssertEqual(owner(deep), "1000:1000")
        XCTAssertEqual(owner(deep + "/leaf"), "1000:1000")
        XCTAssertEqual(owner(p + "/hostlink"), "1000:1000", "the link itself is re-owned")
        XCTAssertEqual(owner(hostFile), "\(base + 1000):\(base + 1000)", "the shift followed a symlink to a host file")
        XCTAssertEqual(Fixtures.read(hostFile), "host data\n")
        XCTAssertEqual(owner(p + "/foreign"), "500000:500000", "ids outside the range stay")
        XCTAssertEqual(owner(p + "/rootfile"), "0:0")
        var st = stat()
        XCTAssertEqual(stat(p + "/home/user/tool", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o4755, "set-user-ID kept across the chown")
        XCTAssertEqual(owner(p + "/home/user/tool"), "1000:1000")
        XCTAssertEqual(owner(p + "/home/user/d0/tool-link"), "1000:1000")
        XCTAssertEqual(owner(p + "/home/user/d0/new"), "1000:1000")
        let logs = host.logs.filter { $0.contains("old:") }
        XCTAssertEqual(logs.filter { $0.contains("shifted to the guest's own ids") }.count, 1, "\(logs)")
        let foreign = logs.filter { $0.contains("outside") }
        XCTAssertEqual(foreign.count, 1, "\(logs)")
        XCTAssertTrue(foreign.first?.contains("/foreign (500000:500000)") ?? false, "\(foreign)")

        // Once: an in-range id appearing later (the top is 0 now) is not shifted again.
        XCTAssertEqual(lchown(p + "/rootfile", base + 7, base + 7), 0)
        try fm.removeItem(atPath: p + "/result")
        try vmm.undefine("old")
        _ = try runScript("old", "echo done=1 > /rw/result", extra: ["uid_base": "\(base)"], occurrence: 2)
        XCTAssertEqual(owner(p + "/rootfile"), "\(base + 7):\(base + 7)")
        XCTAssertEqual(host.logs.filter { $0.contains("old:") && $0.contains("shifted") }.count, 1)
    }

    /// A disposable's private is a tmpfs holding a copy of its template's
    /// volume (VolumeManager.makeSnapshotPrivate, `cp -a`: owners kept). A
    /// template volume still under the old convention carries the template's
    /// base, not the disposable's: the shift takes the base from the top
    /// directory's owner, and tmpfs takes the idmapped mount too.
    func testDisposableSnapshotOfAnOldTemplateVolumeIsShifted() throws {
        let p = privateDir("disp"), templateBase: UInt32 = 4_000_000
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        XCTAssertEqual(mount("tmpfs", p, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755,size=8m"), 0)
        defer { umount2(p, Int32(MNT_DETACH)) }
        try FileManager.default.createDirectory(atPath: p + "/home/user", withIntermediateDirectories: true)
        try "from the template\n".write(toFile: p + "/home/user/f", atomically: true, encoding: .utf8)
        for (path, id) in [(p + "/home/user/f", templateBase + 1000), (p + "/home/user", templateBase + 1000),
                           (p + "/home", templateBase), (p, templateBase)] {
            XCTAssertEqual(lchown(path, id, id), 0)
        }
        let r = try runScript("disp", """
        echo "inside=$(stat -c %U:%u:%g /home/user/f)" > /rw/result
        su -s /bin/sh user -c 'echo mine >> /home/user/f' && echo user_write=ok >> /rw/result || echo user_write=denied >> /rw/result
        """, extra: ["uid_base": "\(base)"])
        XCTAssertEqual(r["inside"], "user:1000:1000", "\(r)")
        XCTAssertEqual(r["user_write"], "ok")
        XCTAssertEqual(owner(p + "/home/user/f"), "1000:1000")
        XCTAssertEqual(owner(p), "0:0")
        XCTAssertTrue(host.logs.contains { $0.contains("uid base \(templateBase) (this domain's is \(base))") }, "\(host.logs)")
    }
}
