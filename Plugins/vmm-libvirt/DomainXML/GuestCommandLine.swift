// The boot contract's command line for a QEMU guest (PluginKit's
// BootCommandLine builds it): the agent's channel is virtio-serial or vsock,
// the console ttyS0.
import PluginKit

public enum GuestCommandLine {
    /// The default vsock port of the agent when the channel names none.
    public static let defaultVsockPort: UInt32 = 1024

    public static func build(domain: String, _ d: DomainDescription) -> Result<String, DomainXMLError> {
        var vchan: String?
        if let ch = d.channel {
            switch ch.kind {
            case .virtioSerial: vchan = "virtio-serial:\(ch.name)"
            case .vsock: vchan = "vsock:\(vsockPort(ch))"
            case .xen, .socketDir: break  // refused by DomainXML before we get here
            }
        }
        return BootCommandLine.build(domain: domain, d, vchan: vchan, console: "ttyS0").mapError { DomainXMLError($0.message) }
    }

    /// A VSOCK channel's port: its `name` when that is a decimal port number, else the default.
    public static func vsockPort(_ ch: ChannelDescription) -> UInt32 {
        UInt32(ch.name).flatMap { $0 > 0 ? $0 : nil } ?? defaultVsockPort
    }
}
