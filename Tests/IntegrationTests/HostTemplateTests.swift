// The embedded default: a template assembled from the host's own system
// directories, a domain booted from it, and no host secret visible inside.
import Domains
import XCTest
@testable import Host

final class HostTemplateTests: XCTestCase {
    func testDomainFromHostTemplateSeesNoHostSecrets() throws {
        let h = try Host()
        defer { h.shutdownAll() }
        try mapped { () throws(DomainError) in
            _ = try TemplateBuilder(store: h.daemon.store, volumes: h.daemon.volumes).createFromHost("debian", label: "black")
        }
        try h.create("work", template: "debian")
        try h.daemon.runtime.start("work")

        // A real userland: the host's programs run inside the domain.
        let r = try h.run("work", "ls /usr/bin | wc -l; id -un; hostname")
        XCTAssertEqual(r.0, 0, r.2)
        let lines = r.1.split(separator: "\n")
        XCTAssertGreaterThan(Int(lines.first ?? "") ?? 0, 50)
        XCTAssertEqual(lines.dropFirst().map(String.init), ["root", "work"])

        // Secrets stay on the host.
        for path in ["/etc/shadow", "/etc/gshadow"] {
            XCTAssertNotEqual(try h.run("work", "cat \(path)").0, 0, "\(path) must not exist in the domain")
        }
        XCTAssertEqual(try h.run("work", "ls -A /root | wc -l").1, "0\n", "/root is empty")
        XCTAssertEqual(try h.run("work", "ls /etc/ssh 2>/dev/null | grep -c key").1, "0\n", "no host keys")
        // The domain cannot change the template: writes land in its own overlay.
        XCTAssertEqual(try h.run("work", "echo x > /usr/bin/odyssey-probe && echo wrote").1, "wrote\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/usr/bin/odyssey-probe"), "host untouched")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.daemon.volumes.rootDir("debian") + "/usr/bin/odyssey-probe"))
    }
}
