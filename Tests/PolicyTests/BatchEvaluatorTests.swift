import XCTest
@testable import Policy

final class BatchEvaluatorTests: XCTestCase {
    private var temp: TemporaryDirectory!

    override func setUp() { temp = TemporaryDirectory() }
    override func tearDown() { temp.cleanup() }

    private let domainsJSON = Data("""
        {"domains": {
          "dom0": {"type": "AdminVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null,
                   "power_state": "Running", "uuid": "00000000-0000-0000-0000-000000000000", "internal": false},
          "work": {"type": "AppVM", "tags": ["work"], "template_for_dispvms": false, "default_dispvm": "dvm",
                   "power_state": "Running", "uuid": "11111111-0000-0000-0000-000000000001", "internal": false},
          "vault": {"type": "AppVM", "tags": [], "template_for_dispvms": false, "default_dispvm": null,
                    "power_state": "Halted", "uuid": "11111111-0000-0000-0000-000000000002", "internal": false},
          "dvm": {"type": "AppVM", "tags": [], "template_for_dispvms": true, "default_dispvm": null,
                  "power_state": "Halted", "uuid": "11111111-0000-0000-0000-000000000003", "internal": false}
        }}
        """.utf8)

    private let requests = Data("""
        {"service": "qubes.Filecopy", "argument": "+", "source": "work", "target": "vault"}
        {"service": "qubes.Filecopy", "argument": "+", "source": "vault", "target": "work"}

        {"service": "qubes.Ask", "argument": "+x", "source": "work", "target": ""}
        {"service": "qubes.User", "argument": "+", "source": "work", "target": "vault"}
        {"service": "nothing", "argument": "+", "source": "work", "target": "vault"}
        not json
        """.utf8)

    func testOutputLines() {
        let directory = temp.makeDirectory("policy.d")
        temp.write("policy.d/50-test.policy", """
            qubes.Filecopy * work vault allow
            qubes.Filecopy * @anyvm @anyvm deny notify=no
            qubes.Ask * @anyvm @anyvm ask default_target=@dispvm
            qubes.User * @anyvm @anyvm allow user=root autostart=no target=dom0
            """)
        let output = BatchEvaluator.run(policyDirectories: [directory], domainsJSON: domainsJSON, requestsJSONL: requests)
        XCTAssertEqual(output, """
            {"resolution": "allow", "target": "vault", "user": null, "autostart": true, "notify": false, "rule": "50-test.policy:1"}
            {"resolution": "deny", "target": null, "user": null, "autostart": false, "notify": false, "rule": "50-test.policy:2"}
            {"resolution": "ask", "target": null, "user": null, "autostart": true, "notify": false, "rule": "50-test.policy:3", \
            "targets_for_ask": ["@dispvm:dvm", "dvm", "vault"], "default_target": "@dispvm:dvm"}
            {"resolution": "allow", "target": "dom0", "user": "root", "autostart": false, "notify": false, "rule": "50-test.policy:4"}
            {"resolution": "deny", "target": null, "user": null, "autostart": false, "notify": true, "rule": null}
            {"resolution": "deny", "target": null, "user": null, "autostart": false, "notify": true, "rule": null}

            """)
    }

    func testPolicyErrorLineThenDenies() {
        let directory = temp.makeDirectory("policy.d")
        temp.write("policy.d/50-test.policy", "qubes.Filecopy * work vault allow\nbroken line\n")
        let output = BatchEvaluator.run(policyDirectories: [directory], domainsJSON: domainsJSON, requestsJSONL: requests)
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 7)
        XCTAssertEqual(lines[0], #"{"policy_error": "\#(directory)/50-test.policy:2: wrong number of fields"}"#)
        for line in lines.dropFirst() {
            XCTAssertEqual(line, #"{"resolution": "deny", "target": null, "user": null, "autostart": false, "notify": true, "rule": null}"#)
        }
    }

    func testDirectoryPrecedenceInBatch() {
        let first = temp.makeDirectory("run")
        let second = temp.makeDirectory("etc")
        temp.write("run/50-test.policy", "* * @anyvm @anyvm deny\n")
        temp.write("etc/50-test.policy", "* * @anyvm @anyvm allow\n")
        let one = Data(#"{"service": "s", "argument": "+", "source": "work", "target": "vault"}"#.utf8)
        let output = BatchEvaluator.run(policyDirectories: [first, second], domainsJSON: domainsJSON, requestsJSONL: one)
        XCTAssertTrue(output.hasPrefix(#"{"resolution": "deny""#), output)
    }

    func testJSONMatchesPythonDumps() {
        XCTAssertEqual(PythonJSON.quote("a\"b\\c\n\u{1}é😀\u{7F}"), #""a\"b\\c\n\u0001\u00e9\ud83d\ude00\u007f""#)
    }

    func testDomainsDecodeWithDefaults() throws {
        let system = try BatchEvaluator.parseDomains(Data(#"{"domains": {"x": {"uuid": "uuid:abc"}}}"#.utf8))
        XCTAssertEqual(system.domains, [PolicyDomain(name: "x", uuid: "abc")])
    }
}
