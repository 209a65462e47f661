// The wire: every malformed or misused request is a ProtocolError reply on
// the admin socket, and the daemon keeps serving.
import Foundation
import XCTest
@testable import Host

final class FramingTests: XCTestCase {
    func reply(_ h: AdminHarness, _ bytes: [UInt8]) throws -> AdminResponse {
        try AdminResponse.decode(try rawCall(h.socket, bytes))
    }

    func assertProtocolError(_ r: AdminResponse, _ contains: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case .failure(let e) = r else { return XCTFail("expected an error, got \(r)", file: file, line: line) }
        XCTAssertEqual(e.type, "ProtocolError", file: file, line: line)
        XCTAssertTrue(e.message.contains(contains), "\(e.message)", file: file, line: line)
    }

    func testFramingErrors() throws {
        let h = try AdminHarness()
        try h.startSocket()
        assertProtocolError(try reply(h, Array("admin.vm.List dom0 name dom0".utf8)), "NUL")
        assertProtocolError(try reply(h, Array("admin.vm.List dom0 name\0".utf8)), "4 fields")
        assertProtocolError(try reply(h, [0x61, 0xff, 0xfe, 0x20] + Array(" dom0 name dom0".utf8) + [0]), "UTF-8")
        assertProtocolError(try reply(h, Array("admin.vm.List dom0 name dom0\0".utf8) + [UInt8](repeating: 0x41, count: 70_000)), "65536")
        // A method Odyssey lacks is a QubesException subclass the tools report, not a ProtocolError.
        let unknown = try rawCall(h.socket, Array("admin.vm.Nope dom0 name dom0\0".utf8))
        XCTAssertEqual(unknown, Array("2\0QubesNotImplementedError\0\0Method not implemented by Odyssey: admin.vm.Nope\0".utf8))
        assertProtocolError(try reply(h, Array("admin.vm.property.Get dom0 name dom0\0".utf8)), "expected an argument")
        assertProtocolError(try reply(h, Array("admin.vm.List+x dom0 name dom0\0".utf8)), "unexpected argument")
        assertProtocolError(try reply(h, Array("admin.vm.List dom0 name dom0\0payload".utf8)), "unexpected payload")
        assertProtocolError(try reply(h, Array("admin.vm.volume.Revert+private dom0 name dom0\0".utf8)), "expected payload")
        assertProtocolError(try reply(h, Array("admin.label.List dom0 name work\0".utf8)), "AdminVM")
        assertProtocolError(try reply(h, Array("admin.vm.List dom0 uuid dom0\0".utf8)), "destination")
        // keyword adminvm is dom0; the daemon still answers after all of that.
        guard case .success(let b) = try reply(h, Array("admin.vm.List dom0 keyword adminvm\0".utf8)) else { return XCTFail() }
        XCTAssertEqual(String(decoding: b, as: UTF8.self), "dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000\n")
    }

    func testQubesClientHeaderAndUUIDDestinations() throws {
        // qubesadmin's QubesLocal always writes `METHOD+ARG dom0 name DEST\0`, with an empty ARG too.
        let h = try AdminHarness()
        try h.startSocket()
        h.create("tpl", klass: "TemplateVM")
        guard case .success(let list) = try reply(h, Array("admin.vm.List+ dom0 name dom0\0".utf8)) else { return XCTFail() }
        XCTAssertEqual(String(decoding: list, as: UTF8.self).split(separator: "\n").count, 2)
        guard case .success(let get) = try reply(h, Array("admin.vm.property.Get+label dom0 name tpl\0".utf8)) else { return XCTFail() }
        XCTAssertEqual(String(decoding: get, as: UTF8.self), "default=False type=label red")
        let uuid = String(String(decoding: list, as: UTF8.self).split(separator: "\n")[1].split(separator: "=").last!)
        XCTAssertEqual(h.ok("admin.vm.property.Get", "name", dest: "uuid:" + uuid), "default=False type=str tpl")
        XCTAssertEqual(h.fails("admin.vm.property.Get", "name", dest: "uuid:00000000-0000-4000-8000-000000000001").type, "QubesVMNotFoundError")
        // A success reply is exactly 0\0 + content; an error 2\0TYPE\0\0MESSAGE\0 (what qubesadmin splits).
        let raw = try rawCall(h.socket, Array("admin.vm.property.Get+nope dom0 name tpl\0".utf8))
        XCTAssertEqual(raw.split(separator: 0, omittingEmptySubsequences: false).count, 5)
        XCTAssertEqual(Array(raw.prefix(2)), [0x32, 0])
    }

    func testLocalClientCannotClaimAnotherSource() throws {
        // The socket authenticates the peer (root or the daemon's user here) as dom0,
        // whatever the request's source field says.
        let h = try AdminHarness()
        try h.startSocket()
        h.create("tpl", klass: "TemplateVM")
        h.create("work", template: "tpl")
        let r = try reply(h, AdminRequest(method: "admin.vm.property.Set", argument: "memory", source: "evil",
                                          dest: "work", payload: Array("800".utf8)).encoded())
        XCTAssertEqual(r, .success([]))
        XCTAssertEqual(h.ok("admin.vm.property.Get", "memory", dest: "work"), "default=False type=int 800")
    }

    /// `ody status` as another user, through setpriv: refused unless in admin_socket_group.
    func asUser(_ socket: String, gid: Int) throws -> (Int32, String) {
        // A copy the other user can reach wherever the build directory is.
        let ody = Path.dirname(socket) + "/ody-copy"
        if !FileManager.default.fileExists(atPath: ody) { try FileManager.default.copyItem(atPath: try Repo.built("ody"), toPath: ody) }
        chmod(ody, 0o755)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=\(gid)", "--clear-groups", ody, "status", "--socket", socket]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self))
    }

    func testPeersOtherThanRootOrTheGroupAreRefused() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to connect as another user")
        }
        let h = try AdminHarness()
        try h.startSocket()
        chmod(h.dir, 0o755); chmod(h.dir + "/state", 0o755)
        chmod(h.socket, 0o666)   // let the other user reach the socket at all: the peer check must still refuse it
        let (status, err) = try asUser(h.socket, gid: 65534)
        XCTAssertEqual(status, 1)
        XCTAssertTrue(err.contains("PermissionDenied"), err)

        // A member of admin_socket_group (here by its primary group) is the admin domain.
        let grouped = try AdminHarness(config: "admin_socket_group = \"nogroup\"")
        try grouped.startSocket()
        chmod(grouped.dir, 0o755); chmod(grouped.dir + "/state", 0o755)
        let (ok, okErr) = try asUser(grouped.socket, gid: 65534)
        XCTAssertEqual(ok, 0, okErr)
    }

    func testClientLibraryErrorsAndSuccess() throws {
        let h = try AdminHarness()
        try h.startSocket()
        let c = AdminClient(socketPath: h.socket)
        XCTAssertEqual(try c.callText(AdminRequest(method: "admin.label.Index", argument: "blue")), "6")
        do {
            _ = try c.call(AdminRequest(method: "admin.vm.property.Get", argument: "memory", dest: "nope"))
            XCTFail("expected an error")
        } catch {
            guard case .remote(let e) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(e.type, "QubesVMNotFoundError")
        }
    }
}
