// One Admin API method, declared once: its shape (argument, payload,
// destination), its access class (scope + read/write/execute, which names the
// policy include file that grants it to other domains) and its handler.
// AdminMethods.handle checks permission first, then the shape, then calls run.

enum ArgumentRule: Sendable { case none, optional, required }
enum PayloadRule: Sendable { case none, optional, required }
enum DestinationRule: Sendable { case adminVM, notAdminVM, any }
enum MethodScope: String, Sendable { case local, global }
enum MethodAccess: String, Sendable { case read, write, execute }

/// Who may call a method at all, before and beyond what the policy grants.
enum CallerRule: Sendable {
    /// dom0, and any domain the policy grants it to.
    case granted
    /// dom0 alone, whatever the policy says: the method takes host paths or
    /// raw backend parameters (host root through a policy line), or it is the
    /// user's own act (answering an ask). `why` goes into the refusal.
    case adminDomainOnly(why: String)
}

/// What a handler gets: the request with `source` set to the authenticated
/// caller, and the connection when the method streams (admin.Events).
struct AdminCall: Sendable {
    let request: AdminRequest
    let stream: AdminStream?

    var method: String { request.method }
    var argument: String { request.argument }
    var caller: String { request.source }
    var dest: String { request.dest }
    var payload: [UInt8] { request.payload }
    var destIsAdmin: Bool { request.dest == "dom0" }
}

struct AdminMethod: Sendable {
    let name: String
    let argument: ArgumentRule
    let payload: PayloadRule
    let destination: DestinationRule
    let scope: MethodScope
    let access: MethodAccess
    let callers: CallerRule
    let run: @Sendable (AdminCall) throws(AdminError) -> [UInt8]

    init(_ name: String, argument: ArgumentRule, payload: PayloadRule = .none, destination: DestinationRule = .any,
         scope: MethodScope, access: MethodAccess, callers: CallerRule = .granted,
         run: @escaping @Sendable (AdminCall) throws(AdminError) -> [UInt8]) {
        self.name = name; self.argument = argument; self.payload = payload; self.destination = destination
        self.scope = scope; self.access = access; self.callers = callers; self.run = run
    }

    /// The older declaration used by the admin.odyssey.* tables: argument and
    /// payload optional when allowed; global and read-write for delegation.
    init(name: String, takesArgument: Bool, takesPayload: Bool, destMustBeAdmin: Bool, callers: CallerRule = .granted,
         run: @escaping @Sendable (AdminRequest) throws(AdminError) -> [UInt8]) {
        self.init(name, argument: takesArgument ? .optional : .none, payload: takesPayload ? .optional : .none,
                  destination: destMustBeAdmin ? .adminVM : .any, scope: .global, access: .write, callers: callers) { c throws(AdminError) in
            try run(c.request)
        }
    }

    /// The policy include file that grants this method to a domain.
    var includeFile: String { "admin-\(scope.rawValue)-\(access == .read ? "ro" : "rwx")" }

    /// PermissionDenied, with the reason, for a domain calling a method that is dom0's alone.
    func checkCaller(_ caller: String) throws(AdminError) {
        if case .adminDomainOnly(let why) = callers, caller != AdminPermission.adminDomain {
            throw AdminError.adminDomainOnly(name, why: why)
        }
    }

    /// ProtocolError for a call that does not fit the declaration (qubesd's messages).
    func checkShape(_ r: AdminRequest) throws(AdminError) {
        switch argument {
        case .none where !r.argument.isEmpty: throw .protocolError("unexpected argument")
        case .required where r.argument.isEmpty: throw .protocolError("expected an argument")
        default: break
        }
        switch payload {
        case .none where !r.payload.isEmpty: throw .protocolError("unexpected payload")
        case .required where r.payload.isEmpty: throw .protocolError("expected payload")
        default: break
        }
        guard r.destType == "name" else { throw .protocolError("only explicit destination names are supported") }
        switch destination {
        case .adminVM where r.dest != "dom0": throw .protocolError("expected destination to be AdminVM")
        case .notAdminVM where r.dest == "dom0": throw .protocolError("expected destination to not be AdminVM")
        default: break
        }
    }
}

extension AdminError {
    static func value(_ m: String) -> AdminError { AdminError("QubesValueError", m) }

    /// The refusal of a dom0-only method (or argument) to a domain, whatever its grants.
    static func adminDomainOnly(_ what: String, why: String) -> AdminError {
        AdminError("PermissionDenied", "\(what) is the admin domain's alone (\(why)); no policy grant gives it to a domain")
    }
}
