import XCTest
@testable import Policy

/// Every message of the reference table, exactly, with `PATH:LINE: `.
final class ErrorMessageTests: XCTestCase {
    private let path = "/etc/p/test.policy"

    private func assertError(_ text: String, _ expected: String, line: Int = 1,
                             file: StaticString = #filePath, sourceLine: UInt = #line) {
        XCTAssertEqual(Fixtures.loadError(text, path: path), "\(path):\(line): \(expected)", file: file, line: sourceLine)
    }

    func testFieldCountAndAction() {
        assertError("svc * @anyvm @anyvm", "wrong number of fields")
        assertError("svc", "wrong number of fields")
        assertError("svc * @anyvm @anyvm allow extra", "invalid action parameter syntax: 'extra'")
        assertError("svc * @anyvm @anyvm allow notify", "invalid action parameter syntax: 'notify'")
        assertError("svc * @anyvm @anyvm bogus", "invalid action: bogus")
        assertError("svc * @anyvm @anyvm Allow", "invalid action: Allow")
        assertError("svc * @anyvm @anyvm allow,target=x", "invalid action: allow,target=x")
        assertError("svc * @anyvm @anyvm allow # no inline comments", "invalid action parameter syntax: '#'")
    }

    func testSourceAndTargetTokens() {
        assertError("svc * @dispvm @anyvm allow", "invalid source token: '@dispvm'")
        assertError("svc * @default @anyvm allow", "invalid source token: '@default'")
        assertError("svc * @invalid @anyvm allow", "invalid source token: '@invalid'")
        assertError("svc * @anyvm @invalid allow", "invalid target token: '@invalid'")
        assertError("svc * @anyvm @dispvm:@foo allow", "invalid target token: '@dispvm:@foo'")
        assertError("svc * @anyvm @tag:@x allow", "invalid target token: '@tag:@x'")
        assertError("svc * @tag: @anyvm allow", "invalid empty @tag: token: '@tag:'")
        assertError("svc * @anyvm @tag: allow", "invalid empty @tag: token: '@tag:'")
        assertError("svc * @anyvm @type: allow", "invalid empty @type: token: '@type:'")
        assertError("svc * @anyvm @dispvm: allow", "invalid empty @dispvm: token: '@dispvm:'")
        assertError("svc * @anyvm @dispvm:@tag: allow", "invalid empty @dispvm:@tag: token: '@dispvm:@tag:'")
        assertError("svc * @dispvm: @anyvm allow", "invalid empty @dispvm: token: '@dispvm:'")
        assertError("svc * @anyvm @it's allow", #"invalid target token: "@it's""#)
    }

    func testRedirectTokens() {
        for token in ["@anyvm", "@tag:x", "@type:AppVM", "@default", "*", "@dispvm:@tag:x", "@tag:"] {
            assertError("svc * @anyvm @anyvm allow target=\(token)", "invalid redirect token: '\(token)'")
        }
        assertError("svc * @anyvm @anyvm ask default_target=@anyvm", "invalid redirect token: '@anyvm'")
        assertError("svc * @anyvm @anyvm allow target=", "invalid empty redirect token")
        assertError("svc * @anyvm @anyvm ask default_target=", "invalid empty redirect token")
        assertError("svc * @anyvm @anyvm allow target=@dispvm:", "invalid empty @dispvm: token: '@dispvm:'")
    }

    func testParameters() {
        assertError("svc * @anyvm @anyvm allow target=x target=y", "parameter given twice: 'target'")
        assertError("svc * @anyvm @anyvm allow default_target=x", "invalid parameters for action Allow: ['default_target=x']")
        assertError("svc * @anyvm @anyvm deny target=x", "invalid parameters for action Deny: ['target=x']")
        assertError("svc * @anyvm @anyvm deny notify=no user=x", "invalid parameters for action Deny: ['notify=no', 'user=x']")
        assertError("svc * @anyvm @anyvm deny autostart=yes", "invalid parameters for action Deny: ['autostart=yes']")
        assertError("svc * @anyvm @anyvm ask bogus=1", "invalid parameters for action Ask: ['bogus=1']")
        assertError("svc * @anyvm @anyvm allow =x", "invalid parameters for action Allow: ['=x']")
        assertError("svc * @anyvm @anyvm allow notify=true", "'notify' is 'true', but can be only 'yes' or 'no'")
        assertError("svc * @anyvm @anyvm allow autostart=1", "'autostart' is '1', but can be only 'yes' or 'no'")
        assertError("svc * @anyvm @anyvm deny autostart=maybe", "'autostart' is 'maybe', but can be only 'yes' or 'no'")
        assertError("svc * @anyvm @default allow", "allow action for @default rule must specify target= option")
        XCTAssertNil(Fixtures.loadError("svc * @anyvm @default allow target=dom0"))
        XCTAssertNil(Fixtures.loadError("svc * @anyvm @default ask"))
        XCTAssertNil(Fixtures.loadError("svc * @anyvm @anyvm allow user=a=b"), "split at the first =")
    }

    func testServiceAndArgument() {
        assertError("svc a @anyvm @anyvm allow", "argument 'a' does not start with +")
        assertError("svc +a/b @anyvm @anyvm allow", "argument '+a/b' contains invalid characters: ('/',)")
        assertError("svc +a/b\\c @anyvm @anyvm allow", #"argument '+a/b\\c' contains invalid characters: ('/', '\\')"#)
        assertError("svc+x * @anyvm @anyvm allow", "service 'svc+x' contains invalid characters: ('+',)")
        assertError("svc$ * @anyvm @anyvm allow", "service 'svc$' contains invalid characters: ('$',)")
        assertError("* +a @anyvm @anyvm allow", "only * argument allowed for * service")
        assertError("* + @anyvm @anyvm allow", "only * argument allowed for * service")
        assertError("svc/ a/ @anyvm @anyvm allow", "service 'svc/' contains invalid characters: ('/',)")
        assertError("svc é @anyvm @anyvm allow", "argument 'é' contains invalid characters: ('é',)")
    }

    func testDirectives() {
        assertError("!include", "invalid number of params")
        assertError("!include a b", "invalid number of params")
        assertError("!include-dir", "invalid number of params")
        assertError("!include-service svc *", "invalid number of params")
        assertError("!foo", "invalid directive")
        assertError("!", "invalid directive")
        assertError("!compat-4.0 x", "invalid number of params")
        let compat = Fixtures.loadError("!compat-4.0", path: path) ?? ""
        XCTAssertTrue(compat.hasPrefix("\(path):1: !compat-4.0 is not supported"), compat)
        assertError("!include-service svc+x * f", "service 'svc+x' contains invalid characters: ('+',)")
        assertError("!include-service * +a f", "only * argument allowed for * service")
    }

    func testLineNumbersCountEveryLine() {
        assertError("# c\n\n  svc * @anyvm @anyvm allow\n\tbad", "wrong number of fields", line: 4)
        assertError("a * @anyvm @anyvm allow\r\nb * @anyvm @anyvm allow\rc", "wrong number of fields", line: 3)
        assertError("   # comment\n  !foo", "invalid directive", line: 2)
    }

    func testWhitespaceIsPythonWhitespace() {
        XCTAssertNil(Fixtures.loadError("svc\u{A0}*\u{2003}@anyvm\t@anyvm\u{0B}allow"))
        XCTAssertNil(Fixtures.loadError("\u{0C}svc * @anyvm @anyvm allow\u{1F}"))
    }

    func testFirstErrorOfALineIsTheReferenceOne() {
        // Argument checked before tokens, tokens before the action, action before parameters.
        assertError("svc a @bad @bad bogus x", "argument 'a' does not start with +")
        assertError("svc * @bad @bad bogus x", "invalid source token: '@bad'")
        assertError("svc * @anyvm @bad bogus x", "invalid target token: '@bad'")
        assertError("svc * @anyvm @anyvm bogus x", "invalid action: bogus")
        assertError("svc * @anyvm @anyvm deny x=1 x=2", "parameter given twice: 'x'")
        assertError("svc * @anyvm @anyvm allow bad=1 target=@anyvm", "invalid parameters for action Allow: ['bad=1', 'target=@anyvm']")
        assertError("svc * @anyvm @default allow user=x", "allow action for @default rule must specify target= option")
    }

    func testPythonRepr() {
        XCTAssertEqual(PythonText.repr("a"), "'a'")
        XCTAssertEqual(PythonText.repr("it's"), "\"it's\"")
        XCTAssertEqual(PythonText.repr("a'b\"c"), "'a\\'b\"c'")
        XCTAssertEqual(PythonText.repr("\u{1}\u{7F}é\u{FEFF}😀"), "'\\x01\\x7fé\\ufeff😀'")
        XCTAssertEqual(PythonText.reprTuple(["/"]), "('/',)")
        XCTAssertEqual(PythonText.reprList(["a", "b"]), "['a', 'b']")
    }
}
