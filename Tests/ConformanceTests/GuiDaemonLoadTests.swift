// The gui-daemon through the host's own loader: its manifest and ABI 1.3
// tables are accepted, and its [gui.x11] keys are the ones it declares.
// (Drawing is tested on a real X server in Tests/GuiDaemonTests.)
import Host
import XCTest

final class GuiDaemonLoadTests: XCTestCase {
    func testTheHostLoadsTheGuiFactoryAndChecksItsKeys() throws {
        let fx = try HostFixture(products: ["gui-daemon"], configBody: """
        [gui]
        default = "x11"
        [gui.x11]
        display = ":0"
        max_windows = 16
        colour = "blue"
        """)
        XCTAssertEqual(fx.backends.registry.refused, [], "the gui-daemon was refused")
        let factory = try XCTUnwrap(fx.backends.registry.factory(.gui, "x11"))
        XCTAssertEqual(factory.pluginID, "gui-daemon")
        XCTAssertEqual(factory.opsVersion, 3, "the table carries the 1.3 attach/detach slots")
        let (errors, warnings) = fx.backends.checkBackendConfig()
        XCTAssertEqual(warnings.filter { $0.contains("gui") }, [], "the default x11 factory is found")
        XCTAssertEqual(errors.count, 1, "\(errors)")
        XCTAssert(errors.first?.contains("[gui.x11] colour: unknown key") == true, "\(errors)")
    }
}
