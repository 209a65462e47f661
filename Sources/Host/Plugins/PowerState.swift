// Qubes power states, shared by every vmm backend (ody_power_state).
import PluginABI

public enum PowerState: String, Sendable, Codable, CaseIterable {
    case na = "NA", halted = "Halted", transient = "Transient", running = "Running", halting = "Halting"
    case dying = "Dying", crashed = "Crashed", paused = "Paused", suspended = "Suspended"

    public init(abi: UInt32) {
        switch abi {
        case ODY_STATE_HALTED.rawValue: self = .halted
        case ODY_STATE_TRANSIENT.rawValue: self = .transient
        case ODY_STATE_RUNNING.rawValue: self = .running
        case ODY_STATE_HALTING.rawValue: self = .halting
        case ODY_STATE_DYING.rawValue: self = .dying
        case ODY_STATE_CRASHED.rawValue: self = .crashed
        case ODY_STATE_PAUSED.rawValue: self = .paused
        case ODY_STATE_SUSPENDED.rawValue: self = .suspended
        default: self = .na   // unknown values from a plugin are NA, never a crash
        }
    }
}
