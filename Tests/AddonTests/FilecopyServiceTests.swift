// FilecopyServiceTests: qubes.Filecopy (the receiver) fed crafted streams
// through the real runner, as a hostile sender would write them. Every
// attack must be refused with an errno-style code and one line on stderr,
// and leave nothing outside ~/QubesIncoming/work/ and overwrite nothing
// (FilecopyScene.assertContained).
import Foundation
import XCTest

final class FilecopyServiceTests: XCTestCase {
    // MARK: a normal stream

    func testTreeLandsWithModesTimesLinksAndTheCRC() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.dir("tree")
        s.file("tree/a.txt", Array("hello\n".utf8), mode: 0o640, mtime: 1_234_567_890, mtimeNsec: 123_456_789)
        s.dir("tree/sub")
        s.file("tree/sub/run.sh", "#!/bin/sh\n", mode: 0o755)
        s.link("tree/sub/to-a", "../a.txt")
        s.file("tree/sub/empty", [])
        s.dirEnd("tree/sub", mode: 0o750, mtime: 1_000_000_000, mtimeNsec: 5)
        s.dirEnd("tree", mode: 0o755, mtime: 1_100_000_000)
        s.file("top.bin", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        s.end()
        let (r, reply) = try scene.receive(s)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(reply?.code, 0)
        XCTAssertEqual(reply?.crc, UInt64(filecopyCRC32(s.bytes)), "the CRC covers the whole stream")
        let inc = scene.incoming
        XCTAssertEqual(try String(contentsOfFile: inc + "/tree/a.txt", encoding: .utf8), "hello\n")
        XCTAssertEqual(FileManager.default.contents(atPath: inc + "/top.bin").map { Array($0) },
                       (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: inc + "/tree/sub/to-a"), "../a.txt")
        var st = stat()
        XCTAssertEqual(lstat(inc + "/tree/a.txt", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        XCTAssertEqual(st.st_mtim.tv_sec, 1_234_567_890)
        XCTAssertEqual(st.st_mtim.tv_nsec, 123_456_789)
        XCTAssertEqual(lstat(inc + "/tree/sub/run.sh", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o755)
        XCTAssertEqual(lstat(inc + "/tree/sub", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o750)
        XCTAssertEqual(st.st_mtim.tv_sec, 1_000_000_000, "directory times are applied after its contents")
        XCTAssertEqual(st.st_mtim.tv_nsec, 5)
        XCTAssertEqual(lstat(inc + "/tree/sub/empty", &st), 0)
        XCTAssertEqual(st.st_size, 0)
        scene.assertContained()
    }

    func testSetuidSetgidStickyAndWorldWriteNeverLand() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.file("suid", "x", mode: 0o6777)
        s.dir("sticky", mode: 0o1777)
        s.dirEnd("sticky", mode: 0o1777)
        s.dir("locked", mode: 0o000)
        s.dirEnd("locked", mode: 0o000)
        s.end()
        let (r, _) = try scene.receive(s)
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(lstat(scene.incoming + "/suid", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o775, "mode & 0775: no setuid/setgid, not world-writable")
        XCTAssertEqual(lstat(scene.incoming + "/sticky", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o775)
        XCTAssertEqual(lstat(scene.incoming + "/locked", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o700, "directories keep u+rwx so the owner can clean up")
        scene.assertContained()
    }

    // MARK: names

    func testAbsolutePathsAreRefused() throws {
        let scene = try FilecopyScene()
        let victim = NSTemporaryDirectory() + "filecopy-absolute-" + UUID().uuidString
        var s = FilecopyStream()
        s.file(victim, "pwned")
        s.end()
        scene.assertRefused(try scene.receive(s), code: EINVAL)
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim))
    }

    func testDotDotEmptyAndDotComponentsAreRefused() throws {
        let scene = try FilecopyScene()
        for name in ["..", "../escape", "../../secret", "d/../../escape", "./x", "d/./x", "d//x", "d/", "/", ""] {
            var s = FilecopyStream()
            s.dir("d")
            s.file(name, "pwned")
            s.end()
            let r = try scene.receive(s)
            scene.assertRefused(r, code: EINVAL)
            XCTAssertEqual(r.1?.name, name, "the reply names the entry refused")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scene.h.home("personal") + "/QubesIncoming/escape"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: scene.h.home("personal") + "/escape"))
    }

    func testControlCharactersAndInvalidUTF8AreRefusedEvenWithAllowAllNames() throws {
        let scene = try FilecopyScene()
        let bad: [[UInt8]] = [
            Array("new\nline".utf8), Array("esc\u{1b}[31mred".utf8), Array("tab\there".utf8), Array("del\u{7f}".utf8),
            [0x66, 0xFF, 0x66],                 // not UTF-8 at all
            [0x61, 0xC0, 0xAF],                 // overlong '/'
            [0x61, 0xED, 0xA0, 0x80],           // a surrogate
            [0x61, 0xC2, 0x85],                 // C1 control (NEL)
            [0x61, 0xF4, 0x90, 0x80, 0x80],     // above U+10FFFF
        ]
        for name in bad {
            for argument in [nil, "allow-all-names"] {
                var s = FilecopyStream()
                s.entry(nameBytes: name, mode: FilecopyStream.regular | 0o644, data: Array("x".utf8))
                s.end()
                scene.assertRefused(try scene.receive(s, argument: argument), code: EILSEQ)
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scene.incoming), ["existing"])
    }

    func testCharactersOutsideTheAllowListNeedAllowAllNames() throws {
        let scene = try FilecopyScene()
        let unusual = "cafe\u{0301}\u{E000}.txt"   // a combining accent, a private-use character
        var s = FilecopyStream()
        s.file(unusual, "x")
        s.end()
        scene.assertRefused(try scene.receive(s), code: EILSEQ)
        XCTAssertFalse(scene.exists(unusual))
        let (r, reply) = try scene.receive(s, argument: "allow-all-names")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(reply?.code, 0)
        XCTAssertTrue(scene.exists(unusual))
        // What changes how a name is displayed is refused even then.
        for spoof in ["invoice\u{202E}fdp.exe", "a\u{200B}b", "x\u{2066}y", "\u{FEFF}bom"] {
            var t = FilecopyStream()
            t.file(spoof, "x")
            t.end()
            scene.assertRefused(try scene.receive(t, argument: "allow-all-names"), code: EILSEQ)
            XCTAssertFalse(scene.exists(spoof))
        }
        // Ordinary non-ASCII names are on the allow-list.
        var t = FilecopyStream()
        t.file("Grüße – 東京 🙂.txt", "x")
        t.end()
        XCTAssertEqual(try scene.receive(t).0.status, 0)
        XCTAssertTrue(scene.exists("Grüße – 東京 🙂.txt"))
        let unknown = try scene.receive(t, argument: "something-else")
        XCTAssertNotEqual(unknown.0.status, 0)
        XCTAssertTrue(unknown.0.stderr.contains("unknown argument"), unknown.0.stderr)
    }

    // MARK: symbolic links

    func testSymlinkAtTopLevelIsRefused() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.link("top-link", "existing")
        s.end()
        scene.assertRefused(try scene.receive(s), code: EINVAL)
        XCTAssertFalse(scene.exists("top-link"))
    }

    func testSymlinksClimbingOutOfTheirEntryAreRefused() throws {
        let scene = try FilecopyScene()
        let cases: [(String, String)] = [
            ("d/l", ".."), ("d/l", "../existing"), ("d/l", "../../../secret"), ("d/sub/l", "../../existing"),
            ("d/l", "/etc/passwd"), ("d/l", "x/../../existing"), ("d/sub/l", "x/../.."), ("d/l", "./x"),
            ("d/l", "x//y"), ("d/l", ""),
        ]
        for (name, target) in cases {
            var s = FilecopyStream()
            s.dir("d")
            s.dir("d/sub")
            s.link(name, target)
            s.end()
            scene.assertRefused(try scene.receive(s), code: EINVAL)
            XCTAssertFalse(scene.exists(name), "\(name) -> \(target) landed")
            try? FileManager.default.removeItem(atPath: scene.incoming + "/d")
        }
        // Inside the entry is fine, climbing only as far as its top.
        var ok = FilecopyStream()
        ok.dir("d")
        ok.dir("d/sub")
        ok.link("d/sub/up", "..")
        ok.link("d/sub/sibling", "../other/file")
        ok.end()
        let r = try scene.receive(ok)
        XCTAssertEqual(r.0.status, 0, r.0.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: scene.incoming + "/d/sub/up"), "..")
        scene.assertContained()
    }

    func testNothingIsWrittenThroughALink() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.dir("d")
        s.dir("d/sub")
        s.link("d/sub/up", "..")            // accepted: it points at d
        s.file("d/sub/up/sneaky", "x")      // d/sub/up is a link: never followed
        s.end()
        scene.assertRefused(try scene.receive(s), code: ENOTDIR)
        XCTAssertFalse(scene.exists("d/sneaky"))
    }

    // MARK: never overwrite

    func testNothingIsOverwritten() throws {
        let scene = try FilecopyScene()
        var file = FilecopyStream()
        file.file("existing", "replaced")
        file.end()
        scene.assertRefused(try scene.receive(file), code: EEXIST)

        var big = FilecopyStream()   // above the size where the receiver checks before writing
        big.file("existing", [UInt8](repeating: 1, count: 2 << 20))
        big.end()
        scene.assertRefused(try scene.receive(big), code: EEXIST)

        var link = FilecopyStream()
        link.dir("d")
        link.file("d/f", "original")
        link.link("d/f", "g")
        link.end()
        scene.assertRefused(try scene.receive(link), code: EEXIST)
        XCTAssertEqual(try String(contentsOfFile: scene.incoming + "/d/f", encoding: .utf8), "original")

        var dirOverFile = FilecopyStream()
        dirOverFile.dir("existing")
        dirOverFile.end()
        scene.assertRefused(try scene.receive(dirOverFile), code: EEXIST)
    }

    func testAFileReplacingAnAlreadySentDirectoryIsRefused() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.dir("d")
        s.file("d/inside", "kept")
        s.dirEnd("d")
        s.file("d", "I want to be the directory")
        s.end()
        scene.assertRefused(try scene.receive(s), code: EEXIST)
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: scene.incoming + "/d", isDirectory: &isDir))
        XCTAssertTrue(isDir.boolValue)
        XCTAssertEqual(try String(contentsOfFile: scene.incoming + "/d/inside", encoding: .utf8), "kept")
    }

    func testEntriesNeedTheirDirectorySentFirst() throws {
        let scene = try FilecopyScene()
        var s = FilecopyStream()
        s.file("never-sent/f", "x")
        s.end()
        scene.assertRefused(try scene.receive(s), code: ENOENT)
        XCTAssertFalse(scene.exists("never-sent"))
    }

    // MARK: broken and lying streams

    func testTruncatedStreamsLeaveNoPartialFile() throws {
        let scene = try FilecopyScene()
        var full = FilecopyStream()
        full.file("complete", "first")
        full.file("partial", [UInt8](repeating: 0x41, count: 100_000))
        full.end()
        let headerOfPartial = 32 + "complete".utf8.count + 1 + 5
        let cuts = [0, 10, headerOfPartial + 10, headerOfPartial + 32 + 3, headerOfPartial + 32 + 8 + 50_000]
        for cut in cuts {
            try? FileManager.default.removeItem(atPath: scene.incoming + "/complete")
            var s = FilecopyStream()
            s.bytes = Array(full.bytes[0..<cut])
            scene.assertRefused(try scene.receive(s), code: EPROTO)
            XCTAssertFalse(scene.exists("partial"), "a truncated file became visible (cut at \(cut))")
        }
        // Cut in or before the end marker: every entry was complete and stays.
        for cut in [full.bytes.count - 32, full.bytes.count - 1] {
            for name in ["complete", "partial"] { try? FileManager.default.removeItem(atPath: scene.incoming + "/" + name) }
            var s = FilecopyStream()
            s.bytes = Array(full.bytes[0..<cut])
            scene.assertRefused(try scene.receive(s), code: EPROTO)
            XCTAssertEqual(FileManager.default.contents(atPath: scene.incoming + "/partial")?.count, 100_000)
        }
    }

    func testLengthsThatLie() throws {
        let scene = try FilecopyScene()
        // filelen larger than the data: the stream ends inside it.
        var longer = FilecopyStream()
        longer.entry(nameBytes: Array("f".utf8), mode: FilecopyStream.regular | 0o644, data: Array("short".utf8), filelen: 1 << 20)
        scene.assertRefused(try scene.receive(longer), code: EPROTO)
        XCTAssertFalse(scene.exists("f"))

        // namelen past the name: the NUL is not where it must be.
        var namelen = FilecopyStream()
        namelen.header(namelen: 40, mode: FilecopyStream.regular | 0o644, filelen: 1)
        namelen.bytes += Array("f\0".utf8) + [UInt8](repeating: 0x42, count: 38)
        namelen.end()
        scene.assertRefused(try scene.receive(namelen), code: EINVAL)

        // a name without its NUL
        var noNul = FilecopyStream()
        noNul.header(namelen: 3, mode: FilecopyStream.regular | 0o644, filelen: 0)
        noNul.bytes += Array("abc".utf8)
        noNul.end()
        scene.assertRefused(try scene.receive(noNul), code: EINVAL)

        // namelen beyond 16384
        var huge = FilecopyStream()
        huge.header(namelen: 0xFFFF_FFFF, mode: FilecopyStream.regular | 0o644, filelen: 0)
        huge.bytes += [UInt8](repeating: 0x61, count: 100)
        scene.assertRefused(try scene.receive(huge), code: ENAMETOOLONG)

        // a link target longer than a path can be
        var longLink = FilecopyStream()
        longLink.dir("d")
        longLink.entry(nameBytes: Array("d/l".utf8), mode: FilecopyStream.symlink | 0o777, data: [], filelen: 1 << 40)
        scene.assertRefused(try scene.receive(longLink), code: ENAMETOOLONG)

        // nanoseconds out of range
        var nsec = FilecopyStream()
        nsec.file("t", Array("x".utf8), mtimeNsec: 1_000_000_000)
        nsec.end()
        scene.assertRefused(try scene.receive(nsec), code: EINVAL)
        var atime = FilecopyStream()
        atime.entry(nameBytes: Array("t".utf8), mode: FilecopyStream.regular | 0o644, data: Array("x".utf8), atimeNsec: 0xFFFF_FFFF)
        atime.end()
        scene.assertRefused(try scene.receive(atime), code: EINVAL)

        // a directory with data; a device; a fifo
        var dirData = FilecopyStream()
        dirData.entry(nameBytes: Array("dd".utf8), mode: FilecopyStream.directory | 0o755, data: Array("data".utf8))
        dirData.end()
        scene.assertRefused(try scene.receive(dirData), code: EINVAL)
        for type: UInt32 in [0o020000, 0o060000, 0o010000, 0o140000] {
            var dev = FilecopyStream()
            dev.entry(nameBytes: Array("dev".utf8), mode: type | 0o666, data: [])
            dev.end()
            scene.assertRefused(try scene.receive(dev), code: EINVAL)
            XCTAssertFalse(scene.exists("dev"))
        }
        // filelen shorter than the data: the rest is read as a header, which is garbage.
        var shorter = FilecopyStream()
        shorter.entry(nameBytes: Array("s".utf8), mode: FilecopyStream.regular | 0o644, data: [UInt8](repeating: 0xFF, count: 64), filelen: 8)
        shorter.end()
        let r = try scene.receive(shorter)
        XCTAssertNotEqual(r.0.status, 0)
        XCTAssertNotEqual(r.1?.code ?? 0, 0)
        scene.assertContained()
    }

    /// Where files cannot be written nameless (O_TMPFILE + linkat), a
    /// hidden name and a no-replace rename: same guarantees.
    func testHiddenNameFallbackLandsAndLeavesNothingBehind() throws {
        let scene = try FilecopyScene()
        let env = ["ODYSSEY_FILECOPY_NAMED_TEMP": "1"]
        var s = FilecopyStream()
        s.dir("d")
        s.file("d/f", [UInt8](repeating: 7, count: 3 << 20))
        s.dirEnd("d")
        s.end()
        let (r, reply) = try scene.receive(s, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(reply?.crc, UInt64(filecopyCRC32(s.bytes)))
        XCTAssertEqual(FileManager.default.contents(atPath: scene.incoming + "/d/f")?.count, 3 << 20)
        var again = FilecopyStream()
        again.file("existing", "replaced")
        again.end()
        scene.assertRefused(try scene.receive(again, env: env), code: EEXIST)
        var cut = FilecopyStream()
        cut.file("partial", [UInt8](repeating: 1, count: 100_000))
        cut.bytes.removeLast(1000)
        scene.assertRefused(try scene.receive(cut, env: env), code: EPROTO)
        XCTAssertFalse(scene.exists("partial"))
        scene.assertContained()
    }

    // MARK: quota

    func testQuotaBytesRefusesTheStreamBeyondIt() throws {
        let scene = try FilecopyScene(config: ["quota_bytes": "1000"])
        var s = FilecopyStream()
        s.file("first", [UInt8](repeating: 1, count: 600))
        s.file("second", [UInt8](repeating: 2, count: 600))
        s.end()
        let r = try scene.receive(s)
        scene.assertRefused(r, code: EDQUOT)
        XCTAssertEqual(r.1?.name, "second")
        XCTAssertTrue(r.0.stderr.contains("quota_bytes"), r.0.stderr)
        XCTAssertTrue(scene.exists("first"), "complete entries before the quota stay")
        XCTAssertFalse(scene.exists("second"), "the entry beyond the quota is removed")

        var one = FilecopyStream()
        one.file("big", [UInt8](repeating: 3, count: 5000))
        one.end()
        scene.assertRefused(try scene.receive(one), code: EDQUOT)
        XCTAssertFalse(scene.exists("big"))
    }

    func testQuotaFilesCountsEveryEntry() throws {
        let scene = try FilecopyScene(config: ["quota_files": "3"])
        var s = FilecopyStream()
        s.dir("d")
        s.file("d/1", "1")
        s.link("d/2", "1")
        s.file("d/3", "3")
        s.dirEnd("d")
        s.end()
        let r = try scene.receive(s)
        scene.assertRefused(r, code: EDQUOT)
        XCTAssertTrue(r.0.stderr.contains("quota_files"), r.0.stderr)
        XCTAssertTrue(scene.exists("d/2"))
        XCTAssertFalse(scene.exists("d/3"))
        // Within the quota, the same kind of stream lands.
        let roomy = try FilecopyScene(config: ["quota_files": "4", "quota_bytes": "3"])
        XCTAssertEqual(try roomy.receive(s).0.status, 0)
    }

    // MARK: the incoming directory itself

    /// ~/QubesIncoming or ~/QubesIncoming/SOURCE planted as a link (by
    /// anything local): never followed, the copy is refused.
    func testIncomingDirectoryThatIsALinkIsRefused() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let home = h.home("personal"), elsewhere = h.home("personal") + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: home + "/QubesIncoming", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: home + "/QubesIncoming/work", withDestinationPath: elsewhere)
        var s = FilecopyStream()
        s.file("f", "x")
        s.end()
        let r = try h.runService("qubes.Filecopy", source: "work", in: "personal", stdin: s.bytes)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertNotEqual(FilecopyReply(r.stdout)?.code ?? 0, 0)
        XCTAssertTrue(r.stderr.contains("cannot make ~/QubesIncoming/work"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])
        try FileManager.default.removeItem(atPath: home + "/QubesIncoming")
        try FileManager.default.createSymbolicLink(atPath: home + "/QubesIncoming", withDestinationPath: elsewhere)
        let r2 = try h.runService("qubes.Filecopy", source: "work", in: "personal", stdin: s.bytes)
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])
    }

    /// "." and ".." must never name a directory here: the runner refuses
    /// them as callers (a domain name starts with a letter), and the
    /// receiver checks again on its own.
    func testSourceThatCannotNameADirectoryIsRefused() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        var s = FilecopyStream()
        s.file("f", "x")
        s.end()
        for source in ["..", "."] {
            let r = try h.runService("qubes.Filecopy", source: source, in: "personal", stdin: s.bytes)
            XCTAssertNotEqual(r.status, 0, source)
            XCTAssertTrue(r.stderr.contains("no valid QREXEC_REMOTE_DOMAIN") || r.stderr.contains("cannot name a directory"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.home("personal") + "/f"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.home("personal") + "/QubesIncoming/f"))
    }

    // MARK: confinement

    /// The Landlock path (what a native domain, which refuses chroot and
    /// namespaces, uses): the same refusals, the same landing.
    func testLandlockConfinementLandsAndRefusesTheSame() throws {
        let scene = try FilecopyScene()
        let env = ["ODYSSEY_FILECOPY_CONFINEMENT": "landlock"]
        var s = FilecopyStream()
        s.dir("d")
        s.file("d/f", "landlocked")
        s.link("d/l", "f")
        s.dirEnd("d")
        s.end()
        let (r, reply) = try scene.receive(s, env: env)
        if r.status != 0, r.stderr.contains("Landlock is not available") { throw XCTSkip("no Landlock in this kernel: \(r.stderr)") }
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(reply?.crc, UInt64(filecopyCRC32(s.bytes)))
        XCTAssertEqual(try String(contentsOfFile: scene.incoming + "/d/f", encoding: .utf8), "landlocked")
        var bad = FilecopyStream()
        bad.file("../escape", "x")
        bad.end()
        scene.assertRefused(try scene.receive(bad, env: env), code: EINVAL)
        var exists = FilecopyStream()
        exists.file("existing", "x")
        exists.end()
        scene.assertRefused(try scene.receive(exists, env: env), code: EEXIST)
    }

    /// Not root, as in a domain: the user-namespace path (files owned by
    /// the user, nothing outside). Runs the service through setpriv.
    func testUnprivilegedReceiverLandsAsTheUser() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to switch to an unprivileged user") }
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { throw XCTSkip("no \(setpriv)") }
        let scene = try FilecopyScene()
        let home = scene.h.home("personal")
        for path in [home, home + "/QubesIncoming", scene.incoming] { chown(path, 65534, 65534) }
        let before = filecopySnapshot(scene.h.homes, excluding: scene.incoming)
        var s = FilecopyStream()
        s.dir("d")
        s.file("d/f", "as nobody")
        s.dirEnd("d")
        s.end()
        // nobody's own runtime directory (the busy slots), so nothing lands in /tmp.
        let runtime = scene.h.root + "/run-nobody"
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chown(runtime, 65534, 65534)
        let env = ["PATH": "/usr/bin:/bin", "HOME": home, "QREXEC_REMOTE_DOMAIN": "work", "XDG_RUNTIME_DIR": runtime]
        let r = try scene.h.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", scene.h.view + "/rpc/qubes.Filecopy"],
                                env: env, stdin: s.bytes, stdinPath: nil, cwd: "/")
        if r.status != 0, r.stderr.contains("cannot confine") { throw XCTSkip("no confinement for unprivileged users here: \(r.stderr)") }
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(lstat(scene.incoming + "/d/f", &st), 0)
        XCTAssertEqual(st.st_uid, 65534)
        var bad = FilecopyStream()
        bad.dir("x")
        bad.link("x/l", "../../../secret")
        bad.end()
        let refused = try scene.h.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", scene.h.view + "/rpc/qubes.Filecopy"],
                                      env: env, stdin: bad.bytes, stdinPath: nil, cwd: "/")
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(FilecopyReply(refused.stdout)?.code, UInt32(EINVAL))
        XCTAssertEqual(filecopySnapshot(scene.h.homes, excluding: scene.incoming), before)
    }
}
