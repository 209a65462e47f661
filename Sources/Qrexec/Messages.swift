// Typed message bodies and their encodings. Values of these types are either
// built locally (trusted) or returned by a validator (checked): nothing read
// from a peer becomes one of these without passing MessageRules.

/// `struct exec_params { u32 connect_domain; u32 connect_port; char cmdline[]; }`.
public struct ExecParams: Equatable, Sendable {
    public static let fixedSize = 8
    /// The largest command line (without its NUL) Odyssey sends or accepts:
    /// MAX_QREXEC_CMD_LEN of the reference implementation.
    public static let maxCmdline = 65535

    public var connectDomain: UInt32
    public var connectPort: UInt32
    /// The command line without its terminating NUL (no NUL inside).
    public var cmdline: [UInt8]

    public init(connectDomain: UInt32, connectPort: UInt32, cmdline: [UInt8]) {
        self.connectDomain = connectDomain
        self.connectPort = connectPort
        self.cmdline = cmdline
    }

    public init(connectDomain: UInt32, connectPort: UInt32, cmdline: String) {
        self.init(connectDomain: connectDomain, connectPort: connectPort, cmdline: Array(cmdline.utf8))
    }

    public var cmdlineString: String { String(decoding: cmdline, as: UTF8.self) }

    /// Body bytes: the two ids, the command line and its NUL.
    public var body: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.fixedSize + cmdline.count + 1)
        LE.append(connectDomain, to: &out)
        LE.append(connectPort, to: &out)
        out += cmdline
        out.append(0)
        return out
    }
}

/// `struct service_params { char ident[32]; }`: a request id, NUL-padded.
public struct ServiceParams: Equatable, Sendable {
    public static let size = 32
    /// At most 31 characters of `[0-9A-Za-z_.- ]`.
    public var ident: String

    public init(ident: String) { self.ident = ident }

    public var body: [UInt8] { FixedField.encode(ident, size: Self.size) }
}

/// `{ char target_domain[64]; char ident[32]; char service_name[]; }`.
public struct TriggerService3: Equatable, Sendable {
    public static let fixedSize = 64 + 32
    public var targetDomain: String
    public var ident: String
    public var serviceName: String

    public init(targetDomain: String, ident: String, serviceName: String) {
        self.targetDomain = targetDomain; self.ident = ident; self.serviceName = serviceName
    }

    public var body: [UInt8] {
        FixedField.encode(targetDomain, size: 64) + FixedField.encode(ident, size: 32) + Array(serviceName.utf8) + [0]
    }
}

/// `{ char source_domain[64]; char target_domain[64]; char ident[32]; char service_name[]; }`.
/// The source field is carried for compatibility only: the host takes the
/// source from the channel a request arrived on, never from this field.
public struct TriggerService4: Equatable, Sendable {
    public static let fixedSize = 64 + 64 + 32
    public var sourceDomain: String
    public var targetDomain: String
    public var ident: String
    public var serviceName: String

    public init(sourceDomain: String, targetDomain: String, ident: String, serviceName: String) {
        self.sourceDomain = sourceDomain; self.targetDomain = targetDomain; self.ident = ident; self.serviceName = serviceName
    }

    public var body: [UInt8] {
        FixedField.encode(sourceDomain, size: 64) + FixedField.encode(targetDomain, size: 64)
            + FixedField.encode(ident, size: 32) + Array(serviceName.utf8) + [0]
    }
}

/// `struct peer_info { u32 version; }`.
public struct PeerInfo: Equatable, Sendable {
    public static let size = 4
    public var version: UInt32
    public init(version: UInt32) { self.version = version }
    public var body: [UInt8] { var o: [UInt8] = []; LE.append(version, to: &o); return o }
}

/// One checked message.
public enum QrexecMessage: Equatable, Sendable {
    case hello(PeerInfo)
    case execCmdline(ExecParams)
    case justExec(ExecParams)
    case serviceConnect(ExecParams)
    case serviceRefused(ServiceParams)
    case triggerService3(TriggerService3)
    case triggerService4(TriggerService4)
    /// `exec_params` without a command line: the data port is free again.
    case connectionTerminated(connectDomain: UInt32, connectPort: UInt32)
    case stdin([UInt8])
    case stdout([UInt8])
    case stderr([UInt8])
    case exitCode(Int32)

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .execCmdline: .execCmdline
        case .justExec: .justExec
        case .serviceConnect: .serviceConnect
        case .serviceRefused: .serviceRefused
        case .triggerService3: .triggerService3
        case .triggerService4: .triggerService4
        case .connectionTerminated: .connectionTerminated
        case .stdin: .dataStdin
        case .stdout: .dataStdout
        case .stderr: .dataStderr
        case .exitCode: .dataExitCode
        }
    }

    public var body: [UInt8] {
        switch self {
        case .hello(let p): p.body
        case .execCmdline(let p), .justExec(let p), .serviceConnect(let p): p.body
        case .serviceRefused(let p): p.body
        case .triggerService3(let p): p.body
        case .triggerService4(let p): p.body
        case .connectionTerminated(let d, let port): { var o: [UInt8] = []; LE.append(d, to: &o); LE.append(port, to: &o); return o }()
        case .stdin(let b), .stdout(let b), .stderr(let b): b
        case .exitCode(let c): { var o: [UInt8] = []; LE.append(UInt32(bitPattern: c), to: &o); return o }()
        }
    }

    /// Header and body, ready for the wire.
    public var encoded: [UInt8] {
        let b = body
        return MsgHeader(type: type, len: UInt32(b.count)).bytes + b
    }
}

/// Fixed-size NUL-padded char arrays.
enum FixedField {
    /// `value` truncated to size-1 bytes, then NULs up to `size`.
    static func encode(_ value: String, size: Int) -> [UInt8] {
        var b = Array(value.utf8.prefix(size - 1))
        b += [UInt8](repeating: 0, count: size - b.count)
        return b
    }
}
