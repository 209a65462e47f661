// The four plugin interface kinds, as named in config, manifests and the ABI.
import PluginABI

public enum InterfaceKind: String, CaseIterable, Sendable, Codable {
    case vmm, vchan, addon, gui

    public init?(abi value: UInt32) {
        switch value {
        case ODY_KIND_VMM.rawValue: self = .vmm
        case ODY_KIND_VCHAN.rawValue: self = .vchan
        case ODY_KIND_ADDON.rawValue: self = .addon
        case ODY_KIND_GUI.rawValue: self = .gui
        default: return nil
        }
    }

    public var abiValue: UInt32 {
        switch self {
        case .vmm: ODY_KIND_VMM.rawValue
        case .vchan: ODY_KIND_VCHAN.rawValue
        case .addon: ODY_KIND_ADDON.rawValue
        case .gui: ODY_KIND_GUI.rawValue
        }
    }
}
