import Qrexec
import XCTest

final class VMExecArgumentTests: XCTestCase {
    func words(_ s: String) throws -> [String] { try VMExecArgument.decode(s).map { String(decoding: $0, as: UTF8.self) } }

    func testDecoding() throws {
        XCTAssertEqual(try words("ls+-2Dla+--tmp"), ["ls", "-la", "-tmp"])
        XCTAssertEqual(try words("echo+a-20b+c--d"), ["echo", "a b", "c-d"])
        XCTAssertEqual(try words("sh+-2Dc+echo-20-24HOME"), ["sh", "-c", "echo $HOME"])
        XCTAssertEqual(try words("printf+"), ["printf", ""], "an empty word is an empty argument")
    }

    func testRejected() {
        for bad in ["", "+x", "a-", "a-2", "a-2d", "a-ZZ", "a$b", "a b", "a/b", "a-00b"] {
            XCTAssertThrowsError(try VMExecArgument.decode(bad), bad)
        }
    }
}
