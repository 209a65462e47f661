// Pins the ABI as Swift imports it: the same numbers abi_layout.c asserts at
// compile time. A failure here means a change broke every built plugin.
import PluginABI
import XCTest

final class LayoutTests: XCTestCase {
    func testStructSizes() {
        XCTAssertEqual(MemoryLayout<ody_error>.size, 272)
        XCTAssertEqual(MemoryLayout<ody_event>.size, 416)
        XCTAssertEqual(MemoryLayout<ody_host_services>.size, 72)
        XCTAssertEqual(MemoryLayout<ody_factory>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_entry_request>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_plugin_info>.size, 64)
        XCTAssertEqual(MemoryLayout<ody_instance_args>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_domain_config>.size, 232)
        XCTAssertEqual(MemoryLayout<ody_volume>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_share>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_channel_desc>.size, 336)
        XCTAssertEqual(MemoryLayout<ody_domain_config>.offset(of: \.run_dir), 224)
        XCTAssertEqual(MemoryLayout<ody_domain_info>.size, 144)
        XCTAssertEqual(MemoryLayout<ody_vmm_ops>.size, 96)
        XCTAssertEqual(MemoryLayout<ody_vchan_endpoint>.size, 144)
        XCTAssertEqual(MemoryLayout<ody_vchan_ops>.size, 128)
        XCTAssertEqual(MemoryLayout<ody_addon_service>.size, 16)
        XCTAssertEqual(MemoryLayout<ody_addon_desc>.size, 40)
        XCTAssertEqual(MemoryLayout<ody_service_call>.size, 664)
        XCTAssertEqual(MemoryLayout<ody_addon_ops>.size, 56)
        XCTAssertEqual(MemoryLayout<ody_gui_ops>.size, 40)
        XCTAssertEqual(MemoryLayout<ody_gui_domain>.size, 144)
    }

    func testOffsets() {
        XCTAssertEqual(MemoryLayout<ody_error>.offset(of: \.message), 16)
        XCTAssertEqual(MemoryLayout<ody_event>.offset(of: \.seq), 8)
        XCTAssertEqual(MemoryLayout<ody_event>.offset(of: \.domain), 32)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.log), 8)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.config_get), 24)
        XCTAssertEqual(MemoryLayout<ody_factory>.offset(of: \.name), 8)
        XCTAssertEqual(MemoryLayout<ody_factory>.offset(of: \.ops), 24)
        XCTAssertEqual(MemoryLayout<ody_plugin_info>.offset(of: \.id), 16)
        XCTAssertEqual(MemoryLayout<ody_plugin_info>.offset(of: \.factories), 56)
        XCTAssertEqual(MemoryLayout<ody_domain_config>.offset(of: \.name), 8)
        XCTAssertEqual(MemoryLayout<ody_domain_config>.offset(of: \.params), 136)
        XCTAssertEqual(MemoryLayout<ody_vmm_ops>.offset(of: \.open), 8)
        XCTAssertEqual(MemoryLayout<ody_vmm_ops>.offset(of: \.list), 88)
        XCTAssertEqual(MemoryLayout<ody_vchan_ops>.offset(of: \.close), 112)
        XCTAssertEqual(MemoryLayout<ody_service_call>.offset(of: \.source), 520)
        XCTAssertEqual(MemoryLayout<ody_addon_ops>.offset(of: \.on_event), 40)
        XCTAssertEqual(MemoryLayout<ody_addon_ops>.offset(of: \.run_command), 48)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.call_service), 32)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.call_finish), 40)
        XCTAssertEqual(MemoryLayout<ody_command_call>.size, 32)
        XCTAssertEqual(MemoryLayout<ody_command_call>.offset(of: \.argv), 16)
    }

    /// 1.3 grew two tables at their ends: every older offset above is unchanged.
    func testGuiSlotsSince13() {
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.gui_focus), 48)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.clipboard_copy), 56)
        XCTAssertEqual(MemoryLayout<ody_host_services>.offset(of: \.clipboard_paste), 64)
        XCTAssertEqual(MemoryLayout<ody_gui_ops>.offset(of: \.open), 8)
        XCTAssertEqual(MemoryLayout<ody_gui_ops>.offset(of: \.close), 16)
        XCTAssertEqual(MemoryLayout<ody_gui_ops>.offset(of: \.attach), 24)
        XCTAssertEqual(MemoryLayout<ody_gui_ops>.offset(of: \.detach), 32)
        XCTAssertEqual(MemoryLayout<ody_gui_domain>.offset(of: \.name), 8)
        XCTAssertEqual(MemoryLayout<ody_gui_domain>.offset(of: \.label), 72)
        XCTAssertEqual(MemoryLayout<ody_gui_domain>.offset(of: \.color), 136)
        XCTAssertEqual(MemoryLayout<ody_gui_domain>.offset(of: \.channel_fd), 140)
    }

    func testVersionAndEntrySymbol() {
        XCTAssertEqual(ODY_ABI_MAJOR, 1)
        XCTAssertEqual(ODY_ABI_MINOR, 3)
        XCTAssertEqual(ODY_ENTRY_SYMBOL, "odyssey_plugin_entry")
    }

    func testStatusNamesAndErrorHelperRespectStructSize() {
        XCTAssertEqual(String(cString: ody_status_name(ODY_E_TOO_SMALL.rawValue)), "buffer too small")
        var e = ody_error()
        e.struct_size = 8   // an old, smaller error struct: only `code` fits
        XCTAssertEqual(ody_error_set(&e, ODY_E_STATE.rawValue, 5, "x"), ODY_E_STATE.rawValue)
        XCTAssertEqual(e.code, ODY_E_STATE.rawValue)
        XCTAssertEqual(e.backend_code, 0, "backend_code lies outside struct_size and must not be written")
    }
}
