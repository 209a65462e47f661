// The local request protocol between `ody-call` and the agent inside one
// domain (what qrexec-client-vm and qrexec-agent speak over a local socket in
// Qubes). The agent listens on LocalCall.defaultSocketPath (mode 0666; any
// user of the domain may ask for a call: policy is decided by the host, on the
// domain's identity, never on anything in the request).
//
//   ody-call -> agent   one MSG_TRIGGER_SERVICE3 (the wire format the agent
//                       forwards to the host): target, an empty ident (the
//                       agent allocates the real one), SERVICE[+ARG]. Both
//                       names are sanitised by ody-call and checked again by
//                       the agent with the host's own validator.
//   agent -> ody-call   exactly one reply, then the agent closes:
//                       MSG_SERVICE_CONNECT (exec_params, cmdline = ident)
//                         with the data channel attached (SCM_RIGHTS, one
//                         stream socket): ody-call is the qrexec *client* of
//                         it (HELLO, STDIN; STDOUT/STDERR/EXIT_CODE back);
//                       MSG_SERVICE_REFUSED {ident}: policy said no (126);
//                       MSG_DATA_STDERR with a reason: the call failed before
//                         it started (qrexec failure, 125).
//
// The agent is not in the data path: it hands the descriptor it received from
// the host on to ody-call and forgets it.

public enum LocalCall {
    /// Where the agent listens inside the domain.
    public static let defaultSocketPath = "/run/odyssey/qrexec-agent.sock"
    /// Environment variable that overrides the socket path (agent and ody-call; tests).
    public static let socketPathVariable = "ODYSSEY_AGENT_SOCKET"
    /// The longest failure reason the agent sends.
    public static let maxReason = 4096
    /// The protocol version whose rules apply to local messages.
    static let version: UInt32 = 3

    public enum Reply: Equatable, Sendable {
        /// The call is set up; the data channel travels with this message.
        case connect(ExecParams)
        /// Refused by policy.
        case refused(ident: String)
        /// The call could not be made (no control channel, too many pending calls...).
        case failed(String)
    }

    // MARK: request (ody-call -> agent)

    /// The request bytes for a call of `service` on `target`. Names are
    /// sanitised as the host will (qrexec-policy.md section 6); an empty
    /// target, an empty service name or one starting with '+' is refused.
    public static func request(target: String, service: String) throws(QrexecError) -> [UInt8] {
        let t = try Names.sanitizeDomainName(Array(target.utf8), field: "target")
        guard !t.isEmpty else { throw .refusedName(field: "target", reason: "empty (use @default)") }
        let s = try Names.sanitizeServiceName(Array(service.utf8))
        return QrexecMessage.triggerService3(TriggerService3(targetDomain: t, ident: "", serviceName: s)).encoded
    }

    /// Checks a request header before its body is read: only TRIGGER_SERVICE3,
    /// with the host's length rule.
    public static func admitRequest(_ untrusted_header: MsgHeader) throws(QrexecError) -> Int {
        guard untrusted_header.type == .triggerService3 else {
            throw .unexpectedType(untrusted_header.type, direction: .agentToHost)
        }
        return try MessageRules.admit(untrusted_header, version: version, direction: .agentToHost)
    }

    /// Validates a request body with the host's TRIGGER_SERVICE3 validator
    /// (NUL termination, ident charset and padding, sanitised names). The
    /// caller's ident is ignored by the agent.
    public static func validateRequest(_ header: MsgHeader, untrusted_body: [UInt8]) throws(QrexecError) -> TriggerService3 {
        _ = try admitRequest(header)
        guard case .triggerService3(let t) = try MessageRules.validate(header, untrusted_body: untrusted_body) else {
            throw .unexpectedType(header.type, direction: .agentToHost)
        }
        return t
    }

    // MARK: reply (agent -> ody-call)

    public static func encode(_ reply: Reply) -> [UInt8] {
        switch reply {
        case .connect(let p): return QrexecMessage.serviceConnect(p).encoded
        case .refused(let ident): return QrexecMessage.serviceRefused(ServiceParams(ident: ident)).encoded
        case .failed(let why):
            var b = Array(why.utf8.prefix(maxReason))
            if b.isEmpty { b = Array("failed".utf8) }
            return QrexecMessage.stderr(b).encoded
        }
    }

    /// Checks a reply header before its body is read.
    public static func admitReply(_ untrusted_header: MsgHeader) throws(QrexecError) -> Int {
        switch untrusted_header.type {
        case .serviceConnect, .serviceRefused:
            return try MessageRules.admit(untrusted_header, version: version, direction: .hostToAgent)
        case .dataStderr:
            guard untrusted_header.len >= 1, untrusted_header.len <= UInt32(maxReason) else {
                throw .badLength(.dataStderr, len: untrusted_header.len, rule: "1 to \(maxReason)")
            }
            return Int(untrusted_header.len)
        default:
            throw .unexpectedType(untrusted_header.type, direction: .hostToAgent)
        }
    }

    /// Validates a reply body (SERVICE_CONNECT and SERVICE_REFUSED with the
    /// agent's own validators; a reason is made printable ASCII).
    public static func validateReply(_ header: MsgHeader, untrusted_body: [UInt8]) throws(QrexecError) -> Reply {
        _ = try admitReply(header)
        if header.type == .dataStderr {
            guard untrusted_body.count == Int(header.len) else {
                throw .truncated(expected: Int(header.len), got: untrusted_body.count)
            }
            return .failed(printable(untrusted_body))
        }
        switch try MessageRules.validate(header, untrusted_body: untrusted_body) {
        case .serviceConnect(let p): return .connect(p)
        case .serviceRefused(let s): return .refused(ident: s.ident)
        default: throw .unexpectedType(header.type, direction: .hostToAgent)
        }
    }

    /// Bytes outside printable ASCII (and tab) become '?': a reason is shown
    /// on a terminal and must not carry escape sequences.
    public static func printable(_ untrusted: [UInt8]) -> String {
        String(decoding: untrusted.map { ($0 >= 0x20 && $0 < 0x7f) || $0 == 0x09 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
