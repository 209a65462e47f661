// The validators: for every message type, ONE function that checks
// type x direction x negotiated version x exact length, from the header
// alone, before a single body byte is read (`admit`), and then ONE function
// that turns the untrusted body into a typed value (`validate*`). Nothing
// else in Odyssey reads a body from a peer.
//
// Rules (qrexec-protocol.md, "Validation"):
//   HELLO                  len == 4, only as the first message, never after
//   EXEC_CMDLINE/JUST_EXEC len > 8, len - 8 <= 65536; cmdline NUL-terminated, no interior NUL
//   SERVICE_CONNECT        same, and the "cmdline" is a request ident (<= 31 + NUL, ident charset)
//   SERVICE_REFUSED        len == 32; ident charset, NUL-terminated, NUL-padded
//   CONNECTION_TERMINATED  len == 8
//   TRIGGER_SERVICE3 (v3+) len > 96 (QSB-089: strictly greater), len - 96 <= 65000
//   TRIGGER_SERVICE4 (v4+) len > 160, len - 160 <= 65000
//   DATA_STDIN/STDOUT/STDERR len <= the version's chunk size (65536)
//   DATA_EXIT_CODE         len == 4

public enum MessageRules {
    /// The largest service name (the reference daemon's MAX_SERVICE_NAME_LEN region).
    public static let maxServiceName = 65000

    /// Which types may travel in `direction`.
    public static func allowed(_ t: MessageType, _ direction: Direction) -> Bool {
        switch (direction, t) {
        case (_, .hello): true
        case (.hostToAgent, .execCmdline), (.hostToAgent, .justExec),
             (.hostToAgent, .serviceConnect), (.hostToAgent, .serviceRefused): true
        case (.agentToHost, .triggerService3), (.agentToHost, .triggerService4),
             (.agentToHost, .connectionTerminated): true
        case (.serviceToClient, .dataStdout), (.serviceToClient, .dataStderr),
             (.serviceToClient, .dataExitCode): true
        // A caller may send STDERR and EXIT_CODE; they are ignored (QSB-087),
        // but still length-checked like any other message.
        case (.clientToService, .dataStdin), (.clientToService, .dataStderr),
             (.clientToService, .dataExitCode): true
        default: false
        }
    }

    /// Checks a header before its body is read. `version` is nil until the
    /// HELLO exchange is done. Returns the body length to read.
    public static func admit(_ untrusted_header: MsgHeader, version: UInt32?, direction: Direction) throws(QrexecError) -> Int {
        let t = untrusted_header.type
        let len = untrusted_header.len
        if case .unknown(let raw) = t { throw .unknownType(raw) }
        guard let version else {
            guard t == .hello else { throw .helloExpected(got: t) }
            return try admitHello(len)
        }
        guard allowed(t, direction) else { throw .unexpectedType(t, direction: direction) }
        switch t {
        case .hello: throw .duplicateHello
        case .execCmdline, .justExec: return try admitExec(t, len)
        case .serviceConnect: return try admitServiceConnect(len)
        case .serviceRefused: return try admitExact(t, len, ServiceParams.size)
        case .connectionTerminated: return try admitExact(t, len, ExecParams.fixedSize)
        case .triggerService3: return try admitTrigger(t, len, fixed: TriggerService3.fixedSize, since: 3, version: version)
        case .triggerService4: return try admitTrigger(t, len, fixed: TriggerService4.fixedSize, since: 4, version: version)
        case .dataStdin, .dataStdout, .dataStderr: return try admitData(t, len, version: version)
        case .dataExitCode: return try admitExact(t, len, 4)
        case .unknown(let raw): throw .unknownType(raw)
        }
    }

    // MARK: header checks, one per type family

    static func admitHello(_ len: UInt32) throws(QrexecError) -> Int {
        try admitExact(.hello, len, PeerInfo.size)
    }

    static func admitExact(_ t: MessageType, _ len: UInt32, _ size: Int) throws(QrexecError) -> Int {
        guard len == UInt32(size) else { throw .badLength(t, len: len, rule: "exactly \(size)") }
        return size
    }

    static func admitExec(_ t: MessageType, _ len: UInt32) throws(QrexecError) -> Int {
        let fixed = UInt32(ExecParams.fixedSize)
        guard len > fixed, len - fixed <= UInt32(ExecParams.maxCmdline + 1) else {
            throw .badLength(t, len: len, rule: "more than \(fixed) and at most \(Int(fixed) + ExecParams.maxCmdline + 1)")
        }
        return Int(len)
    }

    static func admitServiceConnect(_ len: UInt32) throws(QrexecError) -> Int {
        let fixed = UInt32(ExecParams.fixedSize)
        guard len > fixed, len - fixed <= UInt32(ServiceParams.size) else {
            throw .badLength(.serviceConnect, len: len, rule: "more than \(fixed) and at most \(Int(fixed) + ServiceParams.size)")
        }
        return Int(len)
    }

    static func admitTrigger(_ t: MessageType, _ len: UInt32, fixed: Int, since: UInt32, version: UInt32) throws(QrexecError) -> Int {
        guard version >= since else { throw .typeNotInVersion(t, version: version) }
        // QSB-089: `>` (a service name needs at least its NUL), not `>=`.
        guard len > UInt32(fixed), len - UInt32(fixed) <= UInt32(maxServiceName) else {
            throw .badLength(t, len: len, rule: "more than \(fixed) and at most \(fixed + maxServiceName)")
        }
        return Int(len)
    }

    static func admitData(_ t: MessageType, _ len: UInt32, version: UInt32) throws(QrexecError) -> Int {
        let max = QrexecVersion.maxDataChunk(version)
        guard len <= UInt32(max) else { throw .badLength(t, len: len, rule: "at most \(max)") }
        return Int(len)
    }

    // MARK: body validators, one per type family

    /// Validates the body of an admitted message. `untrusted_body.count` must
    /// be what `admit` returned for `header` (callers read exactly that).
    public static func validate(_ header: MsgHeader, untrusted_body: [UInt8]) throws(QrexecError) -> QrexecMessage {
        guard untrusted_body.count == Int(header.len) else {
            throw .truncated(expected: Int(header.len), got: untrusted_body.count)
        }
        switch header.type {
        case .hello: return .hello(PeerInfo(version: LE.u32(untrusted_body, 0)))
        case .execCmdline: return .execCmdline(try validateExec(.execCmdline, untrusted_body))
        case .justExec: return .justExec(try validateExec(.justExec, untrusted_body))
        case .serviceConnect: return .serviceConnect(try validateServiceConnect(untrusted_body))
        case .serviceRefused: return .serviceRefused(ServiceParams(ident: try validateIdent(.serviceRefused, untrusted_body[...])))
        case .connectionTerminated:
            return .connectionTerminated(connectDomain: LE.u32(untrusted_body, 0), connectPort: LE.u32(untrusted_body, 4))
        case .triggerService3: return .triggerService3(try validateTrigger3(untrusted_body))
        case .triggerService4: return .triggerService4(try validateTrigger4(untrusted_body))
        case .dataStdin: return .stdin(untrusted_body)
        case .dataStdout: return .stdout(untrusted_body)
        case .dataStderr: return .stderr(untrusted_body)
        case .dataExitCode: return .exitCode(Int32(bitPattern: LE.u32(untrusted_body, 0)))
        case .unknown(let raw): throw .unknownType(raw)
        }
    }

    /// admit + validate for a message already whole in memory (tests, fuzzing).
    public static func decode(_ untrusted_bytes: [UInt8], version: UInt32?, direction: Direction) throws(QrexecError) -> QrexecMessage {
        guard untrusted_bytes.count >= MsgHeader.size else { throw .truncated(expected: MsgHeader.size, got: untrusted_bytes.count) }
        let h = MsgHeader(untrusted_bytes: untrusted_bytes)
        let n = try admit(h, version: version, direction: direction)
        guard untrusted_bytes.count - MsgHeader.size == n else {
            throw .truncated(expected: MsgHeader.size + n, got: untrusted_bytes.count)
        }
        return try validate(h, untrusted_body: Array(untrusted_bytes[MsgHeader.size...]))
    }

    static func validateExec(_ t: MessageType, _ untrusted: [UInt8]) throws(QrexecError) -> ExecParams {
        let cmd = try terminatedString(t, "cmdline", untrusted[ExecParams.fixedSize...])
        return ExecParams(connectDomain: LE.u32(untrusted, 0), connectPort: LE.u32(untrusted, 4), cmdline: Array(cmd))
    }

    static func validateServiceConnect(_ untrusted: [UInt8]) throws(QrexecError) -> ExecParams {
        let ident = try validateIdent(.serviceConnect, untrusted[ExecParams.fixedSize...], padded: false)
        return ExecParams(connectDomain: LE.u32(untrusted, 0), connectPort: LE.u32(untrusted, 4), cmdline: Array(ident.utf8))
    }

    static func validateTrigger3(_ untrusted: [UInt8]) throws(QrexecError) -> TriggerService3 {
        let t = MessageType.triggerService3
        let target = try domainField(t, "target_domain", untrusted[0..<64])
        let ident = try validateIdent(t, untrusted[64..<96])
        let service = try serviceField(t, untrusted[96...])
        return TriggerService3(targetDomain: target, ident: ident, serviceName: service)
    }

    static func validateTrigger4(_ untrusted: [UInt8]) throws(QrexecError) -> TriggerService4 {
        let t = MessageType.triggerService4
        let source = try domainField(t, "source_domain", untrusted[0..<64])
        let target = try domainField(t, "target_domain", untrusted[64..<128])
        let ident = try validateIdent(t, untrusted[128..<160])
        let service = try serviceField(t, untrusted[160...])
        return TriggerService4(sourceDomain: source, targetDomain: target, ident: ident, serviceName: service)
    }

    // MARK: field checks

    /// A string that ends exactly at the slice's end with its one NUL.
    static func terminatedString(_ t: MessageType, _ field: String, _ untrusted: ArraySlice<UInt8>) throws(QrexecError) -> ArraySlice<UInt8> {
        guard let last = untrusted.last, last == 0 else { throw .notTerminated(t, field: field) }
        let s = untrusted.dropLast()
        if s.contains(0) { throw .interiorNUL(t, field: field) }
        return s
    }

    /// A fixed char array: NUL-terminated inside the field; what follows the
    /// terminator is not looked at (the reference sender leaves it undefined).
    static func fixedString(_ t: MessageType, _ field: String, _ untrusted: ArraySlice<UInt8>) throws(QrexecError) -> ArraySlice<UInt8> {
        guard let nul = untrusted.firstIndex(of: 0) else { throw .notTerminated(t, field: field) }
        return untrusted[untrusted.startIndex..<nul]
    }

    /// A request ident: `[0-9A-Za-z_.- ]`, NUL-terminated and (if `padded`)
    /// NUL-padded to the end of the field.
    static func validateIdent(_ t: MessageType, _ untrusted: ArraySlice<UInt8>, padded: Bool = true) throws(QrexecError) -> String {
        guard let nul = untrusted.firstIndex(of: 0) else { throw .notTerminated(t, field: "ident") }
        let body = untrusted[untrusted.startIndex..<nul]
        if padded {
            if untrusted[nul...].contains(where: { $0 != 0 }) { throw .badPadding(t, field: "ident") }
        } else if nul != untrusted.endIndex - 1 {
            throw .interiorNUL(t, field: "ident")
        }
        guard body.allSatisfy(Names.isIdentByte) else { throw .badIdent(t) }
        return String(decoding: body, as: UTF8.self)
    }

    static func domainField(_ t: MessageType, _ field: String, _ untrusted: ArraySlice<UInt8>) throws(QrexecError) -> String {
        try Names.sanitizeDomainName(fixedString(t, field, untrusted), field: field)
    }

    static func serviceField(_ t: MessageType, _ untrusted: ArraySlice<UInt8>) throws(QrexecError) -> String {
        try Names.sanitizeServiceName(terminatedString(t, "service_name", untrusted))
    }
}
