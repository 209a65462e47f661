// Handing a call's end to an agent over a vchan without fd passing (issue
// 13: vchan-xen). With fd passing the host attaches one end of the call's
// socketpair to MSG_EXEC_CMDLINE / MSG_SERVICE_CONNECT and stays out of the
// data path. Across Xen no descriptor crosses, so the host serves a fresh
// data port of this link instead, a pump (VchanSocketBridge) moves bytes
// between that vchan and a copy of the call's end, and the message names
// the port (connect_domain 0): the agent dials it, as it dials any data
// channel. The port is this link's, freed when the pump ended and the agent
// reported the session over (exec) or at once on the agent's side (a call
// the agent made: it reports no session end for it).
#if canImport(Qrexec)
import Qrexec
#if canImport(Glibc)
import Glibc
#endif

extension AgentLink {
    /// MSG_EXEC_CMDLINE naming a relayed port; returns the port (the session's id).
    func execRelayed(cmdline: [UInt8], dataFD: Int32) throws(OdysseyError) -> UInt32 {
        let port = try relayPort(into: dataFD)
        do {
            try send(.execCmdline(ExecParams(connectDomain: 0, connectPort: port, cmdline: cmdline)))
        } catch {
            closeRelay(port)
            releasePort(port, agent: true)
            throw error
        }
        return port
    }

    /// MSG_SERVICE_CONNECT naming a relayed port (the caller's agent dials it).
    func serviceConnectRelayed(ident: String, dataFD: Int32) throws(OdysseyError) {
        let port = try relayPort(into: dataFD)
        releasePort(port, agent: true)
        do {
            try send(.serviceConnect(ExecParams(connectDomain: 0, connectPort: port, cmdline: ident)))
        } catch {
            closeRelay(port)
            throw error
        }
    }

    private func relayPort(into dataFD: Int32) throws(OdysseyError) -> UInt32 {
        let port = try allocatePort()
        do {
            let ch = try vchan.serverInit(VchanEndpoint(local: Self.adminDomain, remote: domain, port: port), pumpingInto: dataFD) {
                [weak self] in
                guard let self else { return }
                _ = relays.withLock { $0.removeValue(forKey: port) }
                releasePort(port, host: true)
            }
            relays.withLock { $0[port] = ch }
        } catch {
            releasePort(port, host: true, agent: true)
            throw error
        }
        return port
    }

    private func closeRelay(_ port: UInt32) {
        relays.withLock { $0.removeValue(forKey: port) }?.close()
    }
}
#endif
