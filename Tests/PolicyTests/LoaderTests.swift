import XCTest
@testable import Policy

/// Directories, file names, order, and the include directives, on real temp directories.
final class LoaderTests: XCTestCase {
    private var temp: TemporaryDirectory!

    override func setUp() { temp = TemporaryDirectory() }
    override func tearDown() { temp.cleanup() }

    private func decide(_ policy: Policy, _ call: String, _ source: String, _ target: String) -> String {
        Fixtures.summarize(policy.evaluate(PolicyRequest(call: call, source: source, target: target),
                                           in: Fixtures.system))
    }

    func testFirstDirectoryWinsByBasename() throws {
        let runtime = temp.makeDirectory("run")
        let system = temp.makeDirectory("etc")
        temp.write("run/50-x.policy", "svc * @anyvm @anyvm deny\n")
        temp.write("etc/50-x.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("etc/90-default.policy", "* * @anyvm @anyvm allow\n")
        let policy = try Policy.load(directories: [runtime, system])
        XCTAssertEqual(policy.ruleCount, 2)
        let decision = policy.evaluate(PolicyRequest(call: "svc", source: "work", target: "vault"), in: Fixtures.system)
        XCTAssertEqual(decision.resolution, .deny)
        XCTAssertEqual(decision.rulePath, runtime + "/50-x.policy")
        XCTAssertEqual(decide(policy, "other", "work", "vault"), "allow vault @1")
        let swapped = try Policy.load(directories: [system, runtime])
        XCTAssertEqual(decide(swapped, "svc", "work", "vault"), "allow vault @1")
    }

    func testFilesMergeInCodePointOrderAcrossDirectories() throws {
        let first = temp.makeDirectory("a")
        let second = temp.makeDirectory("b")
        temp.write("b/10-early.policy", "svc * @anyvm @anyvm deny\n")
        temp.write("a/20-late.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("a/Z.txt", "garbage that is ignored\n")
        let policy = try Policy.load(directories: [first, second])
        XCTAssertEqual(policy.rules.map { PythonText.basename($0.path) }, ["10-early.policy", "20-late.policy"])
    }

    func testCodePointOrderNotLocaleOrder() throws {
        let directory = temp.makeDirectory("d")
        for name in ["b.policy", "a_b.policy", "a-b.policy", "a.b.policy", "a0.policy", "ab.policy", "a.policy"] {
            temp.write("d/\(name)", "svc * @anyvm @anyvm allow\n")
        }
        let policy = try Policy.load(directories: [directory])
        XCTAssertEqual(policy.rules.map { PythonText.basename($0.path) },
                       ["a-b.policy", "a.b.policy", "a.policy", "a0.policy", "a_b.policy", "ab.policy", "b.policy"])
    }

    func testIgnoredFiles() throws {
        let directory = temp.makeDirectory("d")
        temp.write("d/.hidden.policy", "bad line\n")
        temp.write("d/notes.txt", "bad line\n")
        temp.write("d/x.policy.bak", "bad line\n")
        temp.write("d/UPPER.txt", "bad line\n")
        temp.write("d/.policy", "bad line\n")
        _ = temp.makeDirectory("d/sub.policy")
        symlink(temp.path + "/missing", directory + "/dangling.policy")
        temp.write("d/ok.policy", "svc * @anyvm @anyvm allow\n")
        let policy = try Policy.load(directories: [directory])
        XCTAssertEqual(policy.ruleCount, 1)
    }

    func testSymlinkToFileCounts() throws {
        let directory = temp.makeDirectory("d")
        let real = temp.write("elsewhere/real.txt", "svc * @anyvm @anyvm allow\n")
        symlink(real, directory + "/10-link.policy")
        XCTAssertEqual(try Policy.load(directories: [directory]).ruleCount, 1)
    }

    func testInvalidFilenameFailsTheWholeLoad() {
        let directory = temp.makeDirectory("d")
        temp.write("d/ok.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("d/Bad.policy", "svc * @anyvm @anyvm allow\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "invalid filename: \(directory)/Bad.policy")
        }
        let failed = Policy.loadOrDenyAll(directories: [directory])
        XCTAssertEqual(failed.loadError?.description, "invalid filename: \(directory)/Bad.policy")
        XCTAssertEqual(failed.evaluate(PolicyRequest(call: "svc", source: "work", target: "vault"), in: Fixtures.system)
            .resolution, .deny)
    }

    func testInvalidFilenameInAShadowedDirectoryStillFails() {
        let first = temp.makeDirectory("a")
        let second = temp.makeDirectory("b")
        temp.write("a/x.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("b/with space.policy", "svc * @anyvm @anyvm allow\n")
        XCTAssertThrowsError(try Policy.load(directories: [first, second])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "invalid filename: \(second)/with space.policy")
        }
    }

    func testSyntaxErrorNamesFileAndLine() {
        let directory = temp.makeDirectory("d")
        temp.write("d/10-a.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("d/20-b.policy", "# ok\nsvc * @anyvm @anyvm allow notify=maybe\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description,
                           "\(directory)/20-b.policy:2: 'notify' is 'maybe', but can be only 'yes' or 'no'")
        }
    }

    func testMissingDirectory() {
        XCTAssertThrowsError(try Policy.load(directories: [temp.path + "/nope"])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description,
                           "failed to load \(temp.path)/nope file: [Errno 2] No such file or directory: '\(temp.path)/nope'")
        }
    }

    func testIncludeIsRelativeToTheTopLevelDirectory() throws {
        let directory = temp.makeDirectory("policy.d")
        temp.write("policy.d/include/inner", "svc * @anyvm @anyvm deny notify=no\n")
        temp.write("policy.d/include/outer", "!include include/inner\nsvc * @anyvm @anyvm allow\n")
        temp.write("policy.d/30-user.policy", "!include include/outer\n")
        let policy = try Policy.load(directories: [directory])
        XCTAssertEqual(policy.ruleCount, 2)
        let decision = policy.evaluate(PolicyRequest(call: "svc", source: "work", target: "vault"), in: Fixtures.system)
        XCTAssertEqual(decision.rule, "inner:1")
        XCTAssertEqual(decision.rulePath, directory + "/include/inner")
        XCTAssertFalse(decision.notify)
    }

    func testIncludeMissingFile() {
        let directory = temp.makeDirectory("d")
        temp.write("d/10-a.policy", "\n!include nothere\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description,
                           "\(directory)/10-a.policy:2: not a file: \(directory)/nothere")
        }
    }

    func testIncludeErrorReportsTheIncludedFile() {
        let directory = temp.makeDirectory("d")
        temp.write("d/inc/bad", "svc * @anyvm @anyvm allow\nsvc\n")
        temp.write("d/10-a.policy", "!include inc/bad\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "\(directory)/inc/bad:2: wrong number of fields")
        }
    }

    func testIncludeLoopIsRefused() {
        let directory = temp.makeDirectory("d")
        temp.write("d/a", "!include b\n")
        temp.write("d/b", "!include a\n")
        temp.write("d/10-x.policy", "!include a\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertTrue((error as? PolicyLoadError)?.message.hasPrefix("include loop") ?? false, "\(error)")
        }
    }

    func testIncludeDir() throws {
        let directory = temp.makeDirectory("d")
        temp.write("d/extra/20-b.policy", "svc * @anyvm @anyvm allow\n")
        temp.write("d/extra/10-a.policy", "svc * @anyvm vault deny\n")
        temp.write("d/extra/ignored.txt", "junk\n")
        temp.write("d/10-x.policy", "!include-dir extra\n")
        let policy = try Policy.load(directories: [directory])
        XCTAssertEqual(policy.rules.map { PythonText.basename($0.path) }, ["10-a.policy", "20-b.policy"])
        XCTAssertEqual(decide(policy, "svc", "work", "vault"), "deny @1")
        XCTAssertEqual(decide(policy, "svc", "work", "personal"), "allow personal @1")
    }

    func testIncludeDirErrors() {
        let directory = temp.makeDirectory("d")
        temp.write("d/10-x.policy", "!include-dir missing\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description,
                           "\(directory)/10-x.policy:1: not a directory: \(directory)/missing")
        }
        temp.write("d/10-x.policy", "!include-dir extra\n")
        temp.write("d/extra/NO.policy", "\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "invalid filename: \(directory)/extra/NO.policy")
        }
    }

    func testIncludeServiceOldSyntax() throws {
        let directory = temp.makeDirectory("d")
        temp.write("d/old/svc", """
            # R4.0 style
            $anyvm $default allow,target=dom0
            work $tag:personal ask,default_target=personal
            $anyvm $anyvm deny,notify=no
            $include:old/more
            """)
        temp.write("d/old/more", "never $anyvm allow\n")
        temp.write("d/10-x.policy", "!include-service qubes.Svc + old/svc\n")
        let policy = try Policy.load(directories: [directory])
        XCTAssertEqual(policy.ruleCount, 4)
        XCTAssertEqual(policy.rules[0].service, "qubes.Svc")
        XCTAssertEqual(policy.rules[0].argument, "+")
        XCTAssertEqual(policy.rules[0].action.redirect, .name("dom0"))
        XCTAssertEqual(decide(policy, "qubes.Svc", "work", ""), "allow dom0 @2")
        XCTAssertEqual(decide(policy, "qubes.Svc", "work", "personal"), "ask [dom0,personal] default=personal @3")
        XCTAssertEqual(decide(policy, "qubes.Svc", "vault", "personal"), "deny @4 quiet")
        XCTAssertEqual(decide(policy, "qubes.Svc+x", "work", ""), "deny")
        XCTAssertEqual(policy.rules[3].label, "more:1")
    }

    func testIncludeServiceErrors() {
        let directory = temp.makeDirectory("d")
        temp.write("d/old/svc", "$anyvm $anyvm allow\n!include-dir x\n")
        temp.write("d/10-x.policy", "!include-service svc * old/svc\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "\(directory)/old/svc:2: invalid directive")
        }
        temp.write("d/old/svc", "$anyvm\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "\(directory)/old/svc:1: wrong number of fields")
        }
        temp.write("d/old/svc", "$anyvm $anyvm\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description, "\(directory)/old/svc:1: wrong number of fields")
        }
        temp.write("d/old/svc", "$anyvm $anyvm allow,bogus\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertEqual((error as? PolicyLoadError)?.description,
                           "\(directory)/old/svc:1: invalid action parameter syntax: 'bogus'")
        }
    }

    func testCompatDirectiveIsRefusedNotIgnored() {
        let directory = temp.makeDirectory("d")
        temp.write("d/35-compat.policy", "!compat-4.0\n")
        XCTAssertThrowsError(try Policy.load(directories: [directory])) { error in
            XCTAssertTrue((error as? PolicyLoadError)?.description.contains("not supported") ?? false)
        }
    }

    func testInvalidUTF8FailsClosed() {
        let directory = temp.makeDirectory("d")
        _ = FileManager.default.createFile(atPath: directory + "/10-a.policy", contents: Data([0x73, 0xFF, 0x0A]))
        XCTAssertThrowsError(try Policy.load(directories: [directory]))
    }

    func testParseResolvesIncludesAgainstItsDirectory() throws {
        temp.write("inc/rules", "svc * @anyvm @anyvm allow\n")
        let policy = try Policy.parse("!include inc/rules\n", path: temp.path + "/main.policy")
        XCTAssertEqual(policy.ruleCount, 1)
    }
}
