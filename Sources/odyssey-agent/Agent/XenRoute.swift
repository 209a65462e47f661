// The agent's channels in a Xen domU (ODYSSEY_VCHAN=xen, which the guest
// kit's init passes for odyssey.vchan=xen): each channel is a vchan-xen
// client of dom0 (domain 0) on the channel's port, mapped from the ring dom0
// published at /local/domain/0/data/vchan/<this domid>/<port>. Dom0 granted
// that ring to this domain alone, so reaching it is the identity.
//
// The rest of the agent wants a connected stream socket per channel, so the
// dialer hands it one end of a socketpair and a pump thread (VchanPump:
// bounded buffers, poll on the event fd and the socket, never busy) moves
// bytes between the other end and the vchan until either side ends.
// libxenvchan is linked statically (XenVchanLinked), as the agent must be.
#if canImport(Glibc)
import Glibc
#endif
import PluginABI
import VchanSocketCore
import XenVchanCore
import XenVchanLinked

struct XenRoute {
    let ends: XenVchanEnds

    /// Dom0's domain id: the agent's channels all end there.
    static let dom0: Int32 = 0

    /// Opens xenstore (/dev/xen/xenbus) and learns this domain's id.
    static func open() -> Result<XenRoute, VchanError> {
        // The device nodes appear when the guest kit's init loads xen-evtchn
        // and xen-gntdev (devtmpfs); without them libxenvchan fails obscurely.
        let devices: [String] = ["/dev/xen/evtchn", "/dev/xen/gntdev"]
        let missing = devices.filter { access($0, F_OK) != 0 }
        if !missing.isEmpty {
            return .failure(.invalid("ODYSSEY_VCHAN=xen: \(missing.joined(separator: ", ")) missing "
                                     + "(load the xen-evtchn and xen-gntdev modules; is this a Xen domU?)"))
        }
        do throws(XenVchanError) {
            let api = XenVchanAPI.linked
            // One attempt per connect: the dialer does the retrying and the backoff.
            return .success(XenRoute(ends: try XenVchanEnds(api: api, store: try XenStore(api: api), connectTimeoutNs: 0)))
        } catch { return .failure(.invalid("ODYSSEY_VCHAN=xen: \(error.message)")) }
    }

    var label: String { "xen domid \(ends.ownDomid) -> dom0" }

    /// One attempt: nil while dom0 serves nothing on `port` (yet), else a
    /// connected socket whose pump runs until either side closes.
    func tryDial(port: UInt32) throws(VchanError) -> SocketChannel? {
        let ch: XenChannel
        do throws(XenVchanError) {
            ch = try ends.connect(server: Self.dom0, port: port, label: "\(label):\(port)")
        } catch {
            if error.code == ODY_E_TIMEOUT { return nil }   // nothing published yet: like ECONNREFUSED
            throw .invalid("\(label) port \(port): \(error.message)")
        }
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            ch.close()
            throw .io("\(label) port \(port): socketpair", errno: errno)
        }
        let pumpEnd = fds[1]
        let pumped = PumpedXenChannel(ch)
        let started = startThread {
            _ = VchanPump.run(pumped, socket: pumpEnd)   // why it ended reaches the agent as the socket's EOF
            Glibc.close(pumpEnd)
            ch.close()
        }
        guard started else {
            Glibc.close(fds[0]); Glibc.close(fds[1]); ch.close()
            throw .io("\(label) port \(port): no thread for the channel's pump", errno: EAGAIN)
        }
        return SocketChannel.adopt(connectedFD: fds[0])
    }
}

/// XenChannel as VchanPump drives it (the pump is its only user).
final class PumpedXenChannel: PumpableVchan, @unchecked Sendable {
    let ch: XenChannel
    init(_ ch: XenChannel) { self.ch = ch }

    var pumpPollFD: Int32 { ch.eventFD }
    func pumpConsumeEvent() { ch.consumeEvent() }
    func pumpState() -> VchanPumpState {
        switch ch.state {
        case ODY_VCHAN_CONNECTED: .connected
        case ODY_VCHAN_WAITING: .waiting
        default: .disconnected
        }
    }
    func pumpDataReady() -> Int { ch.dataReady }
    func pumpBufferSpace() -> Int { ch.bufferSpace }
    func pumpRead(_ buf: UnsafeMutableRawPointer, _ size: Int) throws(VchanError) -> Int {
        do throws(XenVchanError) { return try ch.read(buf, size) } catch { throw .io(error.message, errno: error.errno) }
    }
    func pumpWrite(_ buf: UnsafeRawPointer, _ size: Int) throws(VchanError) -> Int {
        do throws(XenVchanError) { return try ch.write(buf, size) } catch { throw .io(error.message, errno: error.errno) }
    }
}
