// FilecopyCommandTests: ody-copy and ody-move as a user of "work" runs
// them; the harness loops the qrexec call back to qubes.Filecopy running
// as "personal". Round trips are compared entry by entry (contents,
// modes, times, links); a fake receiver shows the sender checking the CRC.
import Foundation
import XCTest

final class FilecopyCommandTests: XCTestCase {
    /// path -> what matters of an entry (type, masked mode, mtime, size, content digest or link target).
    func describeTree(_ root: String) -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ dir: String, _ rel: String) {
            for n in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                let path = dir + "/" + n, r = rel.isEmpty ? n : rel + "/" + n
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                let kind = st.st_mode & S_IFMT
                switch kind {
                case S_IFLNK:
                    out[r] = "link -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")
                case S_IFDIR:
                    out[r] = "dir \(String(st.st_mode & 0o7777, radix: 8)) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
                    walk(path, r)
                default:
                    let crc = FileManager.default.contents(atPath: path).map { filecopyCRC32(Array($0)) } ?? 0
                    out[r] = "file \(String(st.st_mode & 0o7777, radix: 8)) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_size) \(crc)"
                }
            }
        }
        walk(root, "")
        return out
    }

    func setTimes(_ path: String, _ sec: Int, _ nsec: Int) {
        var ts = [timespec(tv_sec: sec, tv_nsec: nsec), timespec(tv_sec: sec, tv_nsec: nsec)]
        XCTAssertEqual(utimensat(AT_FDCWD, path, &ts, AT_SYMLINK_NOFOLLOW), 0)
    }

    /// work's home with a tree: sizes 0, 1, 300 KB, 3 MB; modes; a link; times with nanoseconds.
    func makeTree(_ h: AddonHarness) throws -> String {
        let base = h.home("work") + "/tree"
        let fm = FileManager.default
        try fm.createDirectory(atPath: base + "/sub/deeper", withIntermediateDirectories: true)
        _ = fm.createFile(atPath: base + "/empty", contents: Data())
        _ = fm.createFile(atPath: base + "/one", contents: Data([0x31]))
        _ = fm.createFile(atPath: base + "/sub/medium.bin", contents: Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        _ = fm.createFile(atPath: base + "/sub/deeper/large.bin", contents: Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 >> 3) }))
        _ = fm.createFile(atPath: base + "/sub/run.sh", contents: Data("#!/bin/sh\necho hi\n".utf8))
        try fm.createSymbolicLink(atPath: base + "/sub/to-one", withDestinationPath: "../one")
        try fm.createSymbolicLink(atPath: base + "/sub/deeper/to-medium", withDestinationPath: "../medium.bin")
        chmod(base + "/one", 0o600)
        chmod(base + "/sub/run.sh", 0o755)
        chmod(base + "/sub", 0o750)
        setTimes(base + "/one", 1_111_111_111, 222_333_444)
        setTimes(base + "/sub/deeper/large.bin", 1_500_000_000, 999_999_999)
        setTimes(base + "/sub/deeper", 1_400_000_000, 7)
        setTimes(base + "/sub", 1_300_000_000, 0)
        setTimes(base, 1_200_000_000, 1)
        return base
    }

    // MARK: round trips

    func testTreeRoundTripKeepsContentsModesTimesAndLinks() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let tree = try makeTree(h)
        let single = h.home("work") + "/note.txt"
        try "a note\n".write(toFile: single, atomically: true, encoding: .utf8)
        let before = describeTree(tree)
        let r = try h.runCommand(["ody-copy", "--to", "personal", tree, single], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(h.calls, ["work personal qubes.Filecopy"])
        let incoming = h.home("personal") + "/QubesIncoming/work"
        XCTAssertEqual(describeTree(incoming + "/tree"), before)
        XCTAssertEqual(try String(contentsOfFile: incoming + "/note.txt", encoding: .utf8), "a note\n")
        XCTAssertEqual(describeTree(tree), before, "ody-copy leaves the originals")
    }

    func testDefaultTargetIsLeftToThePolicy() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        h.defaultTarget = "chosen"
        let f = h.home("work") + "/f"
        try "x".write(toFile: f, atomically: true, encoding: .utf8)
        let r = try h.runCommand(["ody-copy", "f"], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.home("chosen") + "/QubesIncoming/work/f"))
    }

    func testMoveRemovesOriginalsOnlyAfterSuccess() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let tree = try makeTree(h)
        let before = describeTree(tree)
        // Refused by the policy: everything stays.
        let denied = try h.runCommand(["ody-move", "--to", "personal", tree], in: "work", env: ["ODY_LOOPBACK_DENY": "qubes.Filecopy"])
        XCTAssertNotEqual(denied.status, 0)
        XCTAssertTrue(denied.stderr.contains("the policy refused"), denied.stderr)
        XCTAssertEqual(describeTree(tree), before)
        // Refused by the receiver (the name exists there): everything stays.
        try FileManager.default.createDirectory(atPath: h.home("personal") + "/QubesIncoming/work/tree/sub", withIntermediateDirectories: true)
        try "theirs".write(toFile: h.home("personal") + "/QubesIncoming/work/tree/one", atomically: true, encoding: .utf8)
        let refused = try h.runCommand(["ody-move", "--to", "personal", tree], in: "work")
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("ody-move: personal refused the copy at \"tree/one\": File exists"), refused.stderr)
        XCTAssertEqual(describeTree(tree), before)
        XCTAssertEqual(try String(contentsOfFile: h.home("personal") + "/QubesIncoming/work/tree/one", encoding: .utf8), "theirs")
        // A corrupted transfer (the receiver's CRC differs): everything stays.
        let corrupt = try h.runCommand(["ody-move", "--to", "personal", tree], in: "work",
                                       env: ["ODYSSEY_ADDON_CALL": try fakeReceiver(h, code: 0, crc: 0x1234)])
        XCTAssertEqual(corrupt.status, 1)
        XCTAssertEqual(describeTree(tree), before)
        // Success: the originals go, the copies are whole.
        try FileManager.default.removeItem(atPath: h.home("personal") + "/QubesIncoming")
        let moved = try h.runCommand(["ody-move", "--to", "personal", tree], in: "work")
        XCTAssertEqual(moved.status, 0, moved.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree))
        XCTAssertEqual(describeTree(h.home("personal") + "/QubesIncoming/work/tree"), before)
    }

    func testMoveRefusesATopLevelLinkAndCopyFollowsIt() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let target = h.home("work") + "/real.txt", link = h.home("work") + "/alias.txt"
        try "real\n".write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.txt")
        let move = try h.runCommand(["ody-move", "--to", "personal", link], in: "work")
        XCTAssertEqual(move.status, 1)
        XCTAssertTrue(move.stderr.contains("symbolic link"), move.stderr)
        XCTAssertEqual(h.calls, [], "refused before any call")
        let copy = try h.runCommand(["ody-copy", "--to", "personal", link], in: "work")
        XCTAssertEqual(copy.status, 0, copy.stderr)
        XCTAssertEqual(try String(contentsOfFile: h.home("personal") + "/QubesIncoming/work/alias.txt", encoding: .utf8), "real\n")
    }

    // MARK: names

    func testUnusualNamesGoThroughAllowAllNames() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let dir = h.home("work") + "/docs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "x".write(toFile: dir + "/plain.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try h.runCommand(["ody-copy", "--to", "personal", dir], in: "work").status, 0)
        try "y".write(toFile: dir + "/cafe\u{0301}\u{E000}.txt", atomically: true, encoding: .utf8)   // combining accent, a private-use character
        try FileManager.default.removeItem(atPath: h.home("personal") + "/QubesIncoming")
        let r = try h.runCommand(["ody-copy", "--to", "personal", dir], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(h.calls, ["work personal qubes.Filecopy", "work personal qubes.Filecopy+allow-all-names"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.home("personal") + "/QubesIncoming/work/docs/cafe\u{0301}\u{E000}.txt"))
    }

    func testNamesTheReceiverWouldRefuseAreReportedBeforeTheCall() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let dir = h.home("work") + "/d"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "x".write(toFile: dir + "/bad\nname", atomically: true, encoding: .utf8)
        let r = try h.runCommand(["ody-copy", "--to", "personal", dir], in: "work")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("control character"), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        XCTAssertEqual(h.calls, [])
        try FileManager.default.removeItem(atPath: dir + "/bad\nname")
        try FileManager.default.createSymbolicLink(atPath: dir + "/abs", withDestinationPath: "/etc/passwd")
        let link = try h.runCommand(["ody-copy", "--to", "personal", dir], in: "work")
        XCTAssertEqual(link.status, 1)
        XCTAssertTrue(link.stderr.contains("absolute target"), link.stderr)
        XCTAssertEqual(h.calls, [])
    }

    // MARK: the verdict

    /// A fake qubes.Filecopy: reads the stream, answers `code` and `crc`.
    func fakeReceiver(_ h: AddonHarness, code: UInt32, crc: UInt32) throws -> String {
        let reply = h.root + "/fake-reply-" + UUID().uuidString
        var bytes = FilecopyStream.le32(code) + FilecopyStream.le32(0) + FilecopyStream.le64(UInt64(crc))
        if code != 0 { bytes += FilecopyStream.le32(4) + Array("nope".utf8) }
        _ = FileManager.default.createFile(atPath: reply, contents: Data(bytes))
        let script = h.root + "/fake-receiver-" + UUID().uuidString
        try "#!/bin/sh\ncat > /dev/null\ncat '\(reply)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return script
    }

    func testCRCMismatchIsSeenByTheSender() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let f = h.home("work") + "/f"
        try "some data".write(toFile: f, atomically: true, encoding: .utf8)
        let r = try h.runCommand(["ody-copy", "--to", "personal", f], in: "work", env: ["ODYSSEY_ADDON_CALL": try fakeReceiver(h, code: 0, crc: 0xDEAD)])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("arrived corrupted (CRC-32 0000dead received"), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        let refused = try h.runCommand(["ody-copy", "--to", "personal", f], in: "work", env: ["ODYSSEY_ADDON_CALL": try fakeReceiver(h, code: UInt32(ENOSPC), crc: 0)])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("personal refused the copy at \"nope\": No space left on device"), refused.stderr)
    }

    func testReceiverThatNeverAnswersIsAFailure() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let f = h.home("work") + "/f"
        try "x".write(toFile: f, atomically: true, encoding: .utf8)
        let script = h.root + "/silent"
        try "#!/bin/sh\ncat > /dev/null\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = try h.runCommand(["ody-copy", "--to", "personal", f], in: "work", env: ["ODYSSEY_ADDON_CALL": script])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("did not confirm the copy"), r.stderr)
    }

    /// A receiver that says "done" before it read the stream: never a
    /// success, so ody-move keeps the originals.
    func testAnEarlySuccessIsNotBelieved() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let f = h.home("work") + "/big"
        _ = FileManager.default.createFile(atPath: f, contents: Data([UInt8](repeating: 9, count: 16 << 20)))
        let reply = h.root + "/early-reply"
        _ = FileManager.default.createFile(atPath: reply, contents: Data([UInt8](repeating: 0, count: 16)))
        let script = h.root + "/early"
        try "#!/bin/sh\ncat '\(reply)'\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = try h.runCommand(["ody-move", "--to", "personal", f], in: "work", env: ["ODYSSEY_ADDON_CALL": script])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("answered before the copy was complete") || r.stderr.contains("arrived corrupted"), r.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: f)?.count, 16 << 20, "the original stays")
    }

    // MARK: usage

    func testHelpAndUsageErrors() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let help = try h.runCommand(["ody-copy", "--help"], in: "work")
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdoutText.hasPrefix("usage: ody-copy [--to TARGET] [--progress] FILE..."), help.stdoutText)
        XCTAssertTrue(help.stdoutText.contains("QubesIncoming"))
        let moveHelp = try h.runCommand(["ody-move", "-h"], in: "work")
        XCTAssertTrue(moveHelp.stdoutText.contains("removed here once the other domain"), moveHelp.stdoutText)
        for argv in [["ody-copy"], ["ody-copy", "--to"], ["ody-copy", "--bogus", "f"], ["ody-copy", "--to", "personal"]] {
            let r = try h.runCommand(argv, in: "work")
            XCTAssertEqual(r.status, 2, "\(argv): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("(see ody-copy --help)"), r.stderr)
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        }
        let missing = try h.runCommand(["ody-copy", "--to", "personal", "no-such-file"], in: "work")
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no-such-file: No such file or directory"), missing.stderr)
        try FileManager.default.createDirectory(atPath: h.home("work") + "/a/x", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: h.home("work") + "/b/x", withIntermediateDirectories: true)
        let twice = try h.runCommand(["ody-copy", "--to", "personal", "a/x", "b/x/"], in: "work")
        XCTAssertEqual(twice.status, 1)
        XCTAssertTrue(twice.stderr.contains("would both land as \"x\""), twice.stderr)
        XCTAssertEqual(h.calls, [])
    }

    func testProgressShowsBytesAndFiles() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let tree = try makeTree(h)
        let r = try h.runCommand(["ody-copy", "--progress", "--to=personal", tree], in: "work")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("\rody-copy: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("(100%), 7 of 7 files"), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("\n"))
    }

    // MARK: volume

    func testTenThousandSmallFiles() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        let many = h.home("work") + "/many"
        for d in 0..<10 {
            let dir = many + "/d\(d)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for f in 0..<1000 {
                var data = [UInt8](repeating: UInt8(truncatingIfNeeded: d &* 7 &+ f), count: 4096)
                data[0] = UInt8(d); data[1] = UInt8(f & 0xFF); data[2] = UInt8(f >> 8)
                _ = FileManager.default.createFile(atPath: dir + "/f\(f)", contents: Data(data))
            }
        }
        let t0 = Date()
        let r = try h.runCommand(["ody-copy", "--to", "personal", many], in: "work")
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, 0, r.stderr)
        let incoming = h.home("personal") + "/QubesIncoming/work/many"
        var count = 0
        for d in 0..<10 { count += (try FileManager.default.contentsOfDirectory(atPath: incoming + "/d\(d)")).count }
        XCTAssertEqual(count, 10_000)
        for (d, f) in [(0, 0), (3, 517), (9, 999)] {
            let data = FileManager.default.contents(atPath: incoming + "/d\(d)/f\(f)").map { Array($0) } ?? []
            XCTAssertEqual(data.count, 4096)
            XCTAssertEqual(Array(data.prefix(3)), [UInt8(d), UInt8(f & 0xFF), UInt8(f >> 8)])
        }
        print("filecopy: 10,000 files of 4 KiB in \(String(format: "%.3f", seconds)) s")
    }

    func testTwoGiBFile() throws {
        let h = try AddonHarness(addons: ["filecopy"])
        var fs = statvfs()
        guard statvfs(h.home("personal"), &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) > 5 << 30 else {
            throw XCTSkip("less than 5 GiB free for a 2 GiB copy")
        }
        let size: Int64 = 2 << 30
        let path = h.home("work") + "/big.img"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)   // sparse: holes read as zeros
        let marks: [Int64] = [0, 4095, 1 << 20, (1 << 30) + 12345, size - 4096 * 3, size - 1]
        for m in marks {
            var b = UInt8(truncatingIfNeeded: m % 251 + 1)
            XCTAssertEqual(pwrite(fd, &b, 1, off_t(m)), 1)
        }
        close(fd)
        let landed = h.home("personal") + "/QubesIncoming/work/big.img"
        defer {
            unlink(path)
            unlink(landed)
        }
        let t0 = Date()
        let r = try h.runCommand(["ody-copy", "--to", "personal", path], in: "work")
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(stat(landed, &st), 0)
        XCTAssertEqual(Int64(st.st_size), size)
        let rfd = open(landed, O_RDONLY)
        XCTAssertGreaterThanOrEqual(rfd, 0)
        for m in marks + [12, 1 << 29, size - 2] {
            var b: UInt8 = 0xAA
            XCTAssertEqual(pread(rfd, &b, 1, off_t(m)), 1)
            XCTAssertEqual(b, marks.contains(m) ? UInt8(truncatingIfNeeded: m % 251 + 1) : 0, "byte at \(m)")
        }
        close(rfd)
        print("filecopy: 2 GiB in \(String(format: "%.2f", seconds)) s")
    }
}
